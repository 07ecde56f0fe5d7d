"""What each image is: user, environment, labels, contents, absences, size."""

from __future__ import annotations

import json
import subprocess

import pytest

from conjure_sandbox.catalogue import Variant
from conjure_sandbox.config import Settings
from conjure_sandbox.registry import layer_sizes, parse_repository
from conjure_sandbox.version import package_version
from tests.images.conftest import Sandbox
from tests.registrypush import docker_push

pytestmark = pytest.mark.docker


def _config(image: str) -> dict[str, object]:
    out = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{json .Config}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


@pytest.mark.arm64
def test_user_workdir_environment_and_labels(image: str, variant: Variant) -> None:
    config = _config(image)
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/workspace"
    env = dict(str(item).split("=", 1) for item in config["Env"])  # type: ignore[attr-defined]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["NODE_ENV"] == "production"
    labels = dict(config["Labels"])  # type: ignore[call-overload]
    assert labels["org.opencontainers.image.version"] == package_version()
    assert labels["org.opencontainers.image.description"] == variant.description
    for key in ("title", "source", "revision", "created", "licenses", "base.name"):
        assert labels[f"org.opencontainers.image.{key}"], key


@pytest.mark.arm64
def test_promised_and_absent_commands(sandbox: Sandbox, variant: Variant) -> None:
    names = variant.expect.commands + variant.expect.absent_commands
    found = sandbox.sh(
        "; ".join(f"command -v {c} >/dev/null && echo {c}=yes || echo {c}=no" for c in names)
    )
    state = dict(line.split("=") for line in found.split())
    assert {c for c in variant.expect.commands if state[c] != "yes"} == set()
    assert {c for c in variant.expect.absent_commands if state[c] != "no"} == set()


@pytest.mark.arm64
def test_promised_and_absent_python_modules(sandbox: Sandbox, variant: Variant) -> None:
    names = variant.expect.python_modules + variant.expect.absent_python_modules
    script = (
        "import importlib.util, json\n"
        f"names = {list(names)!r}\n"
        "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in names}))"
    )
    state = json.loads(sandbox.python(script))
    assert [m for m in variant.expect.python_modules if not state[m]] == []
    assert [m for m in variant.expect.absent_python_modules if state[m]] == []


@pytest.mark.arm64
@pytest.mark.needs(commands=("node",))
def test_promised_node_modules_resolve_from_any_directory(
    sandbox: Sandbox, variant: Variant
) -> None:
    names = json.dumps(list(variant.expect.node_modules))
    script = (
        f"for (const n of {names}) "
        'console.log(n + "=" + (require(n) ? require.resolve(n).split("/")[1] : "empty"))'
    )
    for directory in ("/workspace", "/tmp", "/"):
        out = sandbox.sh(f"cd {directory} && node -e '{script}'")
        assert out.split() == [f"{n}=opt" for n in variant.expect.node_modules], directory


@pytest.mark.arm64
def test_absent_node_modules_are_nowhere(sandbox: Sandbox, variant: Variant) -> None:
    found = [
        name
        for name in variant.expect.absent_node_modules
        if sandbox.sh(f"find / -xdev -path '*/node_modules/{name}' -print -quit", user="0")
    ]
    assert found == []


@pytest.mark.arm64
def test_promised_and_absent_fonts(sandbox: Sandbox, variant: Variant) -> None:
    """Font families fontconfig (LibreOffice, weasyprint, Pango) lists, and matplotlib finds."""
    listed = sandbox.sh("command -v fc-list >/dev/null && fc-list : family || true")
    families = {f.strip() for line in listed.split("\n") for f in line.split(",")}
    assert [f for f in variant.expect.fonts if f not in families] == []
    assert [f for f in variant.expect.absent_fonts if f in families] == []
    if variant.expect.fonts and "matplotlib" in variant.expect.python_modules:
        script = (
            "from matplotlib import font_manager as fm\n"
            f"for family in {list(variant.expect.fonts)!r}:\n"
            "    path = fm.findfont(fm.FontProperties(family=family), fallback_to_default=False)\n"
            "    print(family, fm.get_font(path).family_name)"
        )
        out = sandbox.python(script).split("\n")
        assert out == [f"{f} {f}" for f in variant.expect.fonts]


@pytest.mark.arm64
@pytest.mark.needs(commands=("pip",))
def test_every_installed_python_package_has_what_it_requires(sandbox: Sandbox) -> None:
    """The venv is installed from the lock without resolving (--no-deps): pip check shows
    that nothing is missing, Debian's pycairo linked in for rlPyCairo included."""
    assert sandbox.sh("pip check 2>&1") == "No broken requirements found."


@pytest.mark.arm64
def test_no_caches_no_apt_lists_no_setuid(sandbox: Sandbox) -> None:
    def as_root(command: str) -> str:
        return sandbox.sh(command, user="0")

    assert as_root("find / -xdev -perm /6000 -type f") == ""
    assert as_root("find /var/lib/apt/lists -type f ! -name lock | wc -l") == "0"
    assert as_root("find / -xdev -type d -path '*/.cache/pip'") == ""
    assert as_root("find /root /home -xdev -name .npm") == ""
    assert as_root("find /var/cache/apt -name '*.deb' | wc -l") == "0"


@pytest.mark.registry
def test_compressed_size_within_budget(image: str, variant: Variant, platform: str) -> None:
    """In a registry (loopback, or where ``--image repo@digest`` already is), the layers'
    compressed sizes add up within budget."""
    budget = variant.expect.size_budget_mb
    assert budget is not None, f"{variant.name} declares no size_budget_mb"
    if "@" in image:
        ref = image
    else:
        ref = f"{Settings.from_env().registry}/conjure-sandbox-test/size:{variant.name}"
        subprocess.run(["docker", "tag", image, ref], check=True)
        # The test image holds only ``platform``; engines before API 1.46 lack push --platform.
        docker_push(ref)
    megabytes = compressed_megabytes(ref, platform)
    print(f"{variant.name} {platform}: {megabytes:.1f} MB compressed (budget {budget} MB)")
    assert megabytes <= budget


def compressed_megabytes(ref: str, platform: str) -> float:
    """``host/repo:tag`` or ``host/repo@digest``: the layers' compressed size in MB."""
    name, reference = ref.split("@", 1) if "@" in ref else ref.rsplit(":", 1)
    return sum(layer_sizes(parse_repository(name), reference, platform)) / 1e6
