from __future__ import annotations

from pathlib import Path

import pytest

from conjure_sandbox.catalogue import load_catalogue, parse_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.errors import SandboxError


def test_the_shipped_catalogue_declares_four_variants_with_full_the_default() -> None:
    catalogue = load_catalogue(docker_dir())
    assert catalogue.names == ("full", "python", "node", "minimal")
    assert catalogue.default.name == "full"
    assert catalogue.default.tag_suffix == ""
    for variant in catalogue:
        assert variant.platforms == ("linux/amd64", "linux/arm64")
        assert variant.dockerfile.is_file(), variant.dockerfile
        assert variant.description
        assert "bash" in variant.expect.commands
        assert not set(variant.expect.commands) & set(variant.expect.absent_commands)


def _entry(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "dockerfile": f"Dockerfile.{name}", "description": name, **extra}


def test_a_fifth_variant_is_one_entry(tmp_path: Path) -> None:
    data = {
        "defaults": {"platforms": ["linux/amd64"]},
        "variant": [_entry("full", default=True, tag_suffix=""), _entry("gpu")],
    }
    catalogue = parse_catalogue(data, tmp_path, "t.toml")
    gpu = catalogue.get("gpu")
    assert gpu.tag_suffix == "-gpu"
    assert gpu.platforms == ("linux/amd64",)
    assert gpu.dockerfile == tmp_path / "Dockerfile.gpu"


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([], r"no \[\[variant\]\] entries"),
        ([_entry("a"), _entry("b")], "exactly one variant must be default"),
        ([_entry("a", default=True), _entry("a")], "variant declared twice: a"),
        ([_entry("a", default=True, tag_suffix="-x"), _entry("x")], "share a tag suffix"),
        ([{"name": "a", "default": True, "description": "d"}], "missing 'dockerfile'"),
    ],
)
def test_catalogue_problems_are_one_line(variants: list[object], message: str) -> None:
    data = {"defaults": {"platforms": ["linux/amd64"]}, "variant": variants}
    with pytest.raises(SandboxError, match=message) as caught:
        parse_catalogue(data, Path("/d"), "t.toml")
    assert "\n" not in str(caught.value)


def test_unknown_variant_lists_the_valid_ones() -> None:
    catalogue = load_catalogue(docker_dir())
    with pytest.raises(SandboxError) as caught:
        catalogue.get("gpu")
    expected = "unknown variant 'gpu' (fix: use one of: full, python, node, minimal)"
    assert str(caught.value) == expected


def test_select_keeps_catalogue_order_and_drops_repeats() -> None:
    catalogue = load_catalogue(docker_dir())
    assert [v.name for v in catalogue.select(["minimal", "full", "minimal"])] == ["full", "minimal"]
    assert catalogue.select([]) == catalogue.variants


def test_missing_catalogue_says_where(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no variant catalogue at"):
        load_catalogue(tmp_path)


def test_expectations_encode_the_absences_between_variants() -> None:
    catalogue = load_catalogue(docker_dir())
    full, python, node, minimal = (catalogue.get(n).expect for n in catalogue.names)
    assert set(python.python_modules) == set(full.python_modules)
    assert {"node", "npm"} <= set(python.absent_commands)
    assert "pandas" in node.absent_python_modules
    assert {"node", "npm"} <= set(minimal.absent_commands)
    assert "pandas" in minimal.absent_python_modules
    assert full.has(commands=("node", "java"), modules=("pandas", "tabula"))
    assert not node.has(modules=("pandas",))
    for expect in (full, python, node, minimal):
        assert "python3" in expect.commands  # the executor edits files with python3 -c
        assert expect.size_budget_mb is not None


def test_the_lock_file_pins_every_requirement_with_hashes() -> None:
    lock = (docker_dir() / "requirements.lock").read_text()
    wanted = [
        line.strip().lower().split("[")[0]
        for line in (docker_dir() / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    lines = lock.splitlines()
    pins = [i for i, line in enumerate(lines) if "==" in line and not line.startswith(" ")]
    pinned = {lines[i].split("==")[0].lower() for i in pins}
    assert set(wanted) <= pinned
    assert "pdfkit" not in pinned  # replaced by weasyprint: wkhtmltopdf is gone from Debian 13
    unhashed = [lines[i] for i in pins if not lines[i + 1].lstrip().startswith("--hash=sha256:")]
    assert unhashed == []
