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


def _with(**changes: object) -> dict[str, object]:
    """A valid one-variant catalogue with the default variant's entry changed."""
    entry = {**_entry("full", default=True, tag_suffix=""), **changes}
    return {"defaults": {"platforms": ["linux/amd64"]}, "variant": [entry]}


def _expecting(**expect: object) -> dict[str, object]:
    return _with(expect=expect)


# Each string reaches a path, a reference, a job name or a command line: bad ones are
# refused in one line that names the field.
BAD_ENTRIES = {
    "name climbs out": (_with(name="../etc"), "name = '../etc'"),
    "name with a slash": (_with(name="a/b"), "name = 'a/b'"),
    "name upper case": (_with(name="Full"), "name = 'Full'"),
    "name empty": (_with(name=""), "name = ''"),
    "name a number": (_with(name=7), "name = 7"),
    "name with a space": (_with(name="my variant"), "name = 'my variant'"),
    "name starts with a dash": (_with(name="-x"), "name = '-x'"),
    "name with a colon": (_with(name="x:latest"), "name = 'x:latest'"),
    "dockerfile leaves docker/": (_with(dockerfile="../x"), "dockerfile = '../x'"),
    "dockerfile absolute": (_with(dockerfile="/etc/passwd"), "dockerfile = '/etc/passwd'"),
    "dockerfile in a folder": (_with(dockerfile="sub/Dockerfile"), "dockerfile = 'sub/Dockerfile'"),
    "dockerfile not a Dockerfile": (_with(dockerfile="tasks.py"), "dockerfile = 'tasks.py'"),
    "dockerfile a list": (_with(dockerfile=["Dockerfile"]), "dockerfile = \\['Dockerfile'\\]"),
    "suffix without a dash": (_with(tag_suffix="min"), "tag_suffix = 'min'"),
    "suffix reads as a prerelease": (_with(tag_suffix="-rc.1"), "tag_suffix = '-rc.1'"),
    "suffix with a colon": (_with(tag_suffix="-a:b"), "tag_suffix = '-a:b'"),
    "suffix upper case": (_with(tag_suffix="-Min"), "tag_suffix = '-Min'"),
    "suffix only a dash": (_with(tag_suffix="-"), "tag_suffix = '-'"),
    "platform not linux": (_with(platforms=["windows/amd64"]), "platforms item = 'windows/amd64'"),
    "platform a string": (_with(platforms="linux/amd64"), "platforms = 'linux/amd64'"),
    "platform twice": (_with(platforms=["linux/amd64"] * 2), "platforms = "),
    "no platforms": (_with(platforms=[]), "no platforms"),
    "default a string": (_with(default="yes"), "default = 'yes'"),
    "description empty": (_with(description=" "), "description = ' '"),
    "unknown key": (_with(dockerfiel="Dockerfile"), "unknown key 'dockerfiel'"),
    "command with a semicolon": (_expecting(commands=["ls; rm -rf /"]), "commands item"),
    "command with a space": (_expecting(absent_commands=["a b"]), "absent_commands item"),
    "module with a quote": (_expecting(python_modules=["os'"]), "python_modules item"),
    "node module climbs out": (_expecting(node_modules=["../x"]), "node_modules item"),
    "font with a quote": (_expecting(fonts=['Free"Sans']), "fonts item"),
    "expect list a string": (_expecting(commands="bash"), "commands = 'bash'"),
    "budget negative": (_expecting(size_budget_mb=-1), "size_budget_mb = -1"),
    "budget a string": (_expecting(size_budget_mb="900"), "size_budget_mb = '900'"),
    "budget nan": (_expecting(size_budget_mb=float("nan")), "size_budget_mb = nan"),
    "budget inf": (_expecting(size_budget_mb=float("inf")), "size_budget_mb = inf"),
    "budget 1e308": (_expecting(size_budget_mb=1e308), "size_budget_mb = 1e\\+308"),
    "name ends in a newline": (_with(name="full\n"), "name = 'full\\\\n'"),
    "name too long": (_with(name="a" * 33), "name = 'a{32}\\.\\.\\.'"),
    "name latest": (_with(name="latest"), "name = 'latest'"),
    "name edge": (_with(name="edge"), "name = 'edge'"),
    "name a commit tag": (_with(name="sha-1234567"), "name = 'sha-1234567'"),
    "dockerfile ends in a newline": (_with(dockerfile="Dockerfile\n"), "dockerfile = "),
    "suffix ends in a newline": (_with(tag_suffix="-x\n"), "tag_suffix = "),
    "platform ends in a newline": (_with(platforms=["linux/amd64\n"]), "platforms item"),
    "description too long": (_with(description="x" * 201), "description = "),
    "description of two lines": (_with(description="a\nb"), "description = "),
    "unknown expectation": (_expecting(comands=["bash"]), "unknown key 'comands'"),
    "variant not a table": ({"variant": ["full"]}, "\\[\\[variant\\]\\] = 'full'"),
    "unknown top-level table": ({"variants": [], "variant": []}, "unknown key 'variants'"),
}


@pytest.mark.parametrize(("data", "message"), BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_a_bad_catalogue_entry_is_one_line_naming_the_field(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(SandboxError, match=message) as caught:
        parse_catalogue(data, Path("/d"), "t.toml")
    assert str(caught.value).startswith("t.toml")
    assert "\n" not in str(caught.value)


def test_the_good_entry_the_fuzz_starts_from_is_accepted() -> None:
    assert parse_catalogue(_with(), Path("/d"), "t.toml").default.dockerfile == Path(
        "/d/Dockerfile.full"
    )


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


def test_a_catalogue_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "variants.toml").write_bytes(b'[[variant]]\nname = "caf\xe9"\n')
    with pytest.raises(SandboxError, match="not UTF-8 \\(byte 23\\)"):
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


def test_no_name_means_the_default_variant_which_the_catalogue_names_once() -> None:
    catalogue = load_catalogue(docker_dir())
    (default,) = [v for v in catalogue if v.default]
    assert catalogue.get(None) == catalogue.default == default
    assert catalogue.get(default.name) == default
