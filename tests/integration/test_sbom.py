"""SBOMs made here, on a pushed image, checked against what the image itself holds."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from packaging.markers import Marker

from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.lock import BROWSER_LOCK, FROM_DEBIAN, PYTHON_LOCK
from conjure_sandbox.sbom import attested_sboms, package_names, package_types
from tests.integration.conftest import run_invoke

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.registry]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _in_image(ref: str, command: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", ref, "bash", "-c", command],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_pushed_images_sbom_lists_its_debian_python_and_node_packages() -> None:
    prefix = f"{Settings.from_env().registry}/conjure-sandbox-test/sbom:0"
    result = run_invoke(
        *("build", "--variant", "full", "--platform", "linux/amd64", "--push"),
        *("--tag", prefix, "--progress", "quiet"),
        env={"CONJURE_BASE": "local"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    documents = attested_sboms(prefix)
    assert set(documents) == {"linux/amd64"}
    document = documents["linux/amd64"]
    assert "Tool: syft-1.18.1" in document["creationInfo"]["creators"]

    debian = _in_image(prefix, "dpkg-query -W -f '${Package}\\n'").split()
    assert package_types(document)["deb"] == len(debian)
    assert package_names(document, "deb") == set(debian)

    # full's CPython installs what the venv's and the browser's locks name for it
    # (markers evaluated).
    lock = "".join((docker_dir() / name).read_text() for name in (PYTHON_LOCK, BROWSER_LOCK))
    cpython = {
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "python_version": "3.13",
        "sys_platform": "linux",
        "platform_machine": "x86_64",
    }
    locked = {
        _canonical(name)
        for name, marker in re.findall(r"^([A-Za-z0-9_.-]+)==\S+(?: ; ([^\\]+))?", lock, re.M)
        if not marker or Marker(marker.strip()).evaluate(cpython)
    }
    assert "brotli" in locked
    assert "brotlicffi" not in locked
    listed = {_canonical(name) for name in package_names(document, "pypi")}
    # Beyond the locks: the venv's own pip, and Debian's pycairo (python3-cairo, linked
    # into the venv), which the lock leaves out on purpose.
    assert listed == locked | {"pip"} | set(FROM_DEBIAN)

    npm_lock = json.loads((docker_dir() / "npm" / "package-lock.json").read_text())
    installed = {path.rsplit("node_modules/", 1)[-1] for path in npm_lock["packages"] if path}
    npm = package_names(document, "npm")
    assert installed <= npm, installed - npm

    summary = run_invoke("sbom", "--ref", prefix)
    assert summary.returncode == 0, summary.stderr
    assert f"deb {len(debian)}" in summary.stdout
