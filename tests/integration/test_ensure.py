"""ensure_image() against the real engine and a loopback registry: each path, and from a wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conjure_sandbox import ensure_image
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.uptodate import local_images
from conjure_sandbox.version import package_version
from tests.integration.conftest import ROOT, Registry, run_invoke
from tests.registrypush import docker_push

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _remove(ref: str) -> None:
    subprocess.run(["docker", "image", "rm", "--force", ref], capture_output=True, check=False)


@pytest.mark.registry
def test_local_hit_then_pull_then_build_when_the_registry_is_down(
    make_registry: Callable[..., Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = make_registry(5006)
    image = f"{registry.host}/conjure-test/ensure"
    monkeypatch.setenv("CONJURE_IMAGE", image)
    ref = f"{image}:{package_version()}-minimal"
    built = run_invoke("build", "--variant", "minimal", env={"CONJURE_BASE": "local"})
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr

    said: list[str] = []
    assert ensure_image("minimal", log=said.append) == ref
    assert said == [f"{ref}: found in the local engine"]

    docker_push(ref)
    _remove(ref)
    said.clear()
    assert ensure_image("minimal", log=said.append) == ref
    assert said[-1] == f"{ref}: pulled"
    assert ref in (local_images([ref]) or {})

    registry.stop()
    _remove(ref)
    said.clear()
    with pytest.raises(SandboxError) as caught:
        ensure_image("minimal", build=False, log=said.append)
    assert "not in the local engine; pull failed (" in str(caught.value)

    assert ensure_image("minimal", log=said.append) == ref
    assert said[-1] == f"{ref}: built locally"
    assert any("building from the packaged Dockerfiles" in line for line in said)
    assert ref in (local_images([ref]) or {})


def test_the_wheel_ships_the_dockerfiles_and_ensure_works_from_it(tmp_path: Path) -> None:
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("conjure_sandbox-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("variants.toml", "Dockerfile", "Dockerfile.minimal", "requirements.lock"):
        assert f"conjure_sandbox/docker/{shipped}" in names

    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
    )
    image = "conjure-sandbox-test/from-wheel"
    ref = f"{image}:{package_version()}-minimal"
    _remove(ref)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONJURE_DOCKER_DIR", "VIRTUAL_ENV"))
    }
    result = subprocess.run(
        [str(venv / "bin" / "conjure-sandbox"), "ensure", "--variant", "minimal", "--no-pull"],
        cwd=tmp_path,  # away from the source tree: only the installed package is there
        env={**env, "CONJURE_IMAGE": image, "CONJURE_BASE": "local"},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == ref
    assert "site-packages/conjure_sandbox/docker" in result.stderr
    assert ref in (local_images([ref]) or {})
