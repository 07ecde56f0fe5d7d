from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conjure_sandbox.catalogue import load_catalogue, parse_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.lock import BROWSER_LOCK, FROM_DEBIAN, PYTHON_LOCK, locked_names


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
        expect = variant.expect
        assert not set(expect.commands) & set(expect.absent_commands)
        assert not set(expect.python_modules) & set(expect.absent_python_modules)
        assert not set(expect.node_modules) & set(expect.absent_node_modules)
        assert not set(expect.fonts) & set(expect.absent_fonts)


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
    # python is full without Node.js and the browser.
    assert set(full.python_modules) - set(python.python_modules) == {"playwright"}
    assert "playwright" in python.absent_python_modules
    assert set(full.fonts) == set(python.fonts) == {"FreeSans", "FreeSerif", "Poppins", "Lora"}
    assert {"node", "npm"} <= set(python.absent_commands)
    assert "pandas" in node.absent_python_modules
    assert {"node", "npm"} <= set(minimal.absent_commands)
    assert "pandas" in minimal.absent_python_modules
    assert full.has(commands=("node", "java"), modules=("pandas", "tabula"))
    assert not node.has(modules=("pandas",))
    for expect in (full, python, node, minimal):
        assert "python3" in expect.commands  # the executor edits files with python3 -c
        assert expect.size_budget_mb is not None


@pytest.mark.parametrize(
    ("source", "lock"),
    [("requirements.in", PYTHON_LOCK), ("requirements-browser.in", BROWSER_LOCK)],
)
def test_the_lock_files_pin_every_requirement_with_hashes(source: str, lock: str) -> None:
    wanted = [
        canonicalize_name(Requirement(line).name)
        for line in (docker_dir() / source).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    lines = (docker_dir() / lock).read_text().splitlines()
    pins = [i for i, line in enumerate(lines) if "==" in line and not line.startswith(" ")]
    pinned = {canonicalize_name(lines[i].split("==")[0]) for i in pins}
    assert set(wanted) <= pinned
    assert "pdfkit" not in pinned  # replaced by weasyprint: wkhtmltopdf is gone from Debian 13
    assert pinned.isdisjoint(FROM_DEBIAN)  # Debian's python3-cairo, linked into the venv
    unhashed = [lines[i] for i in pins if not lines[i + 1].lstrip().startswith("--hash=sha256:")]
    assert unhashed == []


def test_the_browser_lock_adds_to_the_venv_without_repeating_it() -> None:
    venv = set(locked_names((docker_dir() / PYTHON_LOCK).read_text()))
    browser = set(locked_names((docker_dir() / BROWSER_LOCK).read_text()))
    assert "playwright" in browser
    assert venv.isdisjoint(browser)
    assert "playwright" not in venv  # the python variant has no browser
