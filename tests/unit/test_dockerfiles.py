"""Shared Dockerfile layers: rendering, drift, and the checked-in files being current."""

from __future__ import annotations

from pathlib import Path

import pytest

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.dockerfiles import drifted, is_layer_file, layer_names, render
from conjure_sandbox.errors import SandboxError

DOCKER = Path(__file__).parents[2] / "docker"
LAYERS = {"layers/a.dockerfile": "RUN echo a\n", "layers/b.dockerfile": "RUN echo b"}


def test_render_replaces_each_region_with_its_layer_text() -> None:
    text = (
        "ARG BASE\n"
        "# >>> layers/a.dockerfile\nRUN echo old\n# <<< layers/a.dockerfile\n"
        "RUN own step\n"
        "# >>> layers/b.dockerfile\n# <<< layers/b.dockerfile\n"
    )
    assert render(text, LAYERS.__getitem__, "Dockerfile") == (
        "ARG BASE\n"
        "# >>> layers/a.dockerfile\nRUN echo a\n# <<< layers/a.dockerfile\n"
        "RUN own step\n"
        "# >>> layers/b.dockerfile\nRUN echo b\n# <<< layers/b.dockerfile\n"
    )


def test_render_is_stable_once_rendered() -> None:
    text = "# >>> layers/a.dockerfile\n# <<< layers/a.dockerfile\n"
    once = render(text, LAYERS.__getitem__, "Dockerfile")
    assert render(once, LAYERS.__getitem__, "Dockerfile") == once
    assert layer_names(once) == ("layers/a.dockerfile",)


def test_an_unterminated_region_is_one_line_with_the_fix() -> None:
    with pytest.raises(SandboxError, match=r"Dockerfile.node: '# >>> layers/a.dockerfile' has no"):
        render("# >>> layers/a.dockerfile\nRUN x\n", LAYERS.__getitem__, "Dockerfile.node")


def test_a_missing_layer_file_is_named(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# >>> layers/gone.dockerfile\n# <<< layers/gone.dockerfile\n")
    with pytest.raises(SandboxError, match=r"layers/gone.dockerfile does not exist"):
        drifted([dockerfile], tmp_path)


def test_drift_is_found_after_a_layer_edit(tmp_path: Path) -> None:
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "a.dockerfile").write_text("RUN echo a\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# >>> layers/a.dockerfile\nRUN echo a\n# <<< layers/a.dockerfile\n")
    assert drifted([dockerfile], tmp_path) == []
    (tmp_path / "layers" / "a.dockerfile").write_text("RUN echo changed\n")
    (drift,) = drifted([dockerfile], tmp_path)
    assert "RUN echo changed" in drift.rendered
    assert "RUN echo a" in drift.current


def test_the_checked_in_dockerfiles_carry_the_current_layers() -> None:
    catalogue = load_catalogue(DOCKER)
    stale = [d.dockerfile.name for d in drifted([v.dockerfile for v in catalogue], DOCKER)]
    assert stale == [], "run invoke dockerfiles"


def test_every_layer_file_is_used_and_every_variant_starts_alike() -> None:
    catalogue = load_catalogue(DOCKER)
    used = {name for v in catalogue for name in layer_names(v.dockerfile.read_text())}
    present = {f"layers/{p.name}" for p in (DOCKER / "layers").glob("*.dockerfile")}
    assert used == present

    # The executor layer is the first image layer of every variant, so all four share it;
    # only build-platform stages (package lists, the Python environment) come before it.
    def is_stage(name: str) -> bool:
        return "FROM --platform=$BUILDPLATFORM" in (DOCKER / name).read_text()

    for variant in catalogue:
        names = [n for n in layer_names(variant.dockerfile.read_text()) if not is_stage(n)]
        assert names[0] == "layers/executor.dockerfile", variant.name
        assert names[-1] == "layers/user.dockerfile", variant.name


def test_layer_files_are_recognised_by_path() -> None:
    assert is_layer_file("layers/tools.dockerfile")
    assert not is_layer_file("Dockerfile.node")
    assert not is_layer_file("requirements.lock")
