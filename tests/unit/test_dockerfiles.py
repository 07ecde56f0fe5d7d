"""Shared Dockerfile layers: rendering, drift, and the checked-in files being current."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.dockerfiles import drifted, is_layer_file, layer_names, render
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.prerequisites import check_dockerfiles

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
    # only named stages (package lists, the Python environment, fonts, Java) come before it.
    def is_stage(name: str) -> bool:
        return re.search(r"^FROM \S.* AS [\w-]+$", (DOCKER / name).read_text(), re.M) is not None

    for variant in catalogue:
        names = [n for n in layer_names(variant.dockerfile.read_text()) if not is_stage(n)]
        assert names[0] == "layers/executor.dockerfile", variant.name
        assert names[-1] == "layers/user.dockerfile", variant.name


def test_layer_files_are_recognised_by_path() -> None:
    assert is_layer_file("layers/tools.dockerfile")
    assert not is_layer_file("Dockerfile.node")
    assert not is_layer_file("requirements.lock")


def _fork(tmp_path: Path) -> Path:
    fork = tmp_path / "docker"
    shutil.copytree(DOCKER, fork)
    return fork


def test_a_drifted_dockerfile_is_refused_before_any_build(tmp_path: Path) -> None:
    fork = _fork(tmp_path)
    tools = fork / "layers" / "tools.dockerfile"
    tools.write_text(tools.read_text().replace("jq ", "jq zip "))
    dockerfiles = [fork / "Dockerfile.minimal", fork / "Dockerfile.node"]
    check_dockerfiles(dockerfiles[:1], fork)  # minimal does not use the tools layer
    with pytest.raises(SandboxError) as refused:
        check_dockerfiles(dockerfiles, fork)
    assert str(refused.value) == (
        "Dockerfile.node: shared layers differ from docker/layers/ "
        "(fix: run invoke dockerfiles (or invoke dockerfiles --check to see the difference))"
    )


def test_invoke_dockerfiles_checks_then_rewrites(tmp_path: Path) -> None:
    fork = _fork(tmp_path)
    user = fork / "layers" / "user.dockerfile"
    user.write_text(user.read_text().replace('CMD ["bash"]', 'CMD ["bash", "-l"]'))
    env = {**os.environ, "CONJURE_DOCKER_DIR": str(fork)}

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "invoke", "dockerfiles", *args]
        root = DOCKER.parent
        return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)

    checked = invoke("--check")
    assert checked.returncode == 1
    assert checked.stderr.strip().splitlines() == [
        "error: shared layers drifted in Dockerfile, Dockerfile.python, Dockerfile.node, "
        "Dockerfile.minimal (fix: edit docker/layers/, then run invoke dockerfiles)"
    ]
    assert '+CMD ["bash", "-l"]' in checked.stdout
    assert invoke().returncode == 0
    assert invoke("--check").returncode == 0
    assert 'CMD ["bash", "-l"]' in (fork / "Dockerfile.node").read_text()
