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
from conjure_sandbox.engine import local_images
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pin, Pins
from conjure_sandbox.registry import fetch_manifest, parse_repository
from conjure_sandbox.version import package_version
from tests.integration.conftest import ROOT, Registry, run_invoke
from tests.oldengine import OLD_VERSION, old_engine
from tests.registrypush import docker_push

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_an_engine_too_old_for_zstd_is_named_before_any_pull(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    image = "127.0.0.1:5999/conjure-test/old-engine"
    pins = Pins(
        package_version(),
        image,
        {"minimal": Pin("sha256:" + "a" * 64, {"linux/amd64": "sha256:" + "b" * 64})},
    )
    (tmp_path / "pins.json").write_text(pins.to_json())
    monkeypatch.setenv("CONJURE_PINS", str(tmp_path / "pins.json"))
    monkeypatch.setenv("CONJURE_IMAGE", image)
    monkeypatch.delenv("CONJURE_COMPRESSION", raising=False)
    with old_engine() as (host, seen):
        monkeypatch.setenv("DOCKER_HOST", host)
        with pytest.raises(SandboxError) as caught:
            ensure_image("minimal", build=False)
        message = str(caught.value)
        assert "\n" not in message
        assert f"Docker Engine {OLD_VERSION} cannot unpack the zstd layers" in message
        assert "23.0 or newer" in message
        assert "CONJURE_COMPRESSION=gzip" in message
        cli = subprocess.run(
            [sys.executable, "-m", "conjure_sandbox.cli", "ensure", "--variant", "minimal"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DOCKER_HOST": host, "PYTHONPATH": str(ROOT / "src")},
        )
        assert cli.returncode == 1
        assert cli.stderr.startswith(f"error: Docker Engine {OLD_VERSION} cannot unpack")
        assert cli.stderr.count("\n") == 1  # one line, no traceback

        # Having chosen gzip, the user gets no pull and is sent to a local build.
        monkeypatch.setenv("CONJURE_COMPRESSION", "gzip")
        with pytest.raises(SandboxError) as caught:
            ensure_image("minimal", build=False)
        assert f"not pulled (Docker Engine {OLD_VERSION} cannot unpack zstd layers)" in str(
            caught.value
        )
        assert any(request.endswith("/version") for request in seen)
        assert not [request for request in seen if "/images/create" in request]


def _remove(ref: str) -> None:
    subprocess.run(["docker", "image", "rm", "--force", ref], capture_output=True, check=False)


@pytest.mark.registry
def test_pinned_digest_found_then_pulled_never_a_moved_tag_and_the_fallback_is_marked(
    make_registry: Callable[..., Registry],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    local_base: str,
) -> None:
    registry = make_registry(5006)
    image = f"{registry.host}/conjure-test/ensure"
    monkeypatch.setenv("CONJURE_IMAGE", image)
    ref = f"{image}:{package_version()}-minimal"
    built = run_invoke("build", "--variant", "minimal", env={"CONJURE_BASE": "local"})
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    docker_push(ref)
    found = fetch_manifest(parse_repository(image), f"{package_version()}-minimal")
    assert found is not None
    pins = Pins(package_version(), image, {"minimal": Pin(found.digest, dict(found.platforms))})
    (tmp_path / "pins.json").write_text(pins.to_json())
    monkeypatch.setenv("CONJURE_PINS", str(tmp_path / "pins.json"))
    pinned = f"{image}@{found.digest}"
    _remove(ref)

    said: list[str] = []
    assert ensure_image("minimal", log=said.append) == pinned
    assert said[-1] == f"{pinned}: pulled by digest"
    said.clear()
    assert ensure_image("minimal", log=said.append) == pinned
    assert said == [f"{pinned}: found in the local engine ({found.digest[:19]}, the pinned digest)"]

    # The version tag now holds other bytes, in the registry and in the engine: neither counts.
    subprocess.run(["docker", "tag", local_base, ref], check=True)
    docker_push(ref)
    moved = fetch_manifest(parse_repository(image), f"{package_version()}-minimal")
    assert moved is not None
    assert moved.digest != found.digest
    _remove(pinned)
    said.clear()
    assert ensure_image("minimal", log=said.append) == pinned
    assert said[-1] == f"{pinned}: pulled by digest"
    assert (local_images([pinned]) or {})[pinned].id == found.digest

    registry.stop()
    _remove(pinned)
    said.clear()
    with pytest.raises(SandboxError) as caught:
        ensure_image("minimal", build=False, log=said.append)
    assert "not in the local engine; pull failed (" in str(caught.value)

    fallback = ensure_image("minimal", log=said.append)
    assert fallback == f"conjure-sandbox-local:untested-{package_version()}-minimal"
    assert not fallback.startswith(image)
    assert said[-1] == f"{fallback}: built locally; an untested fallback, not the published image"
    assert any("(UNTESTED)" in line for line in said)
    # Later calls never take the fallback for the pinned image.
    said.clear()
    assert ensure_image("minimal", pull=False, log=said.append) == fallback
    assert not any("found in the local engine" in line for line in said)


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
    ref = f"conjure-sandbox-local:untested-{package_version()}-minimal"
    _remove(ref)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONJURE_DOCKER_DIR", "CONJURE_PINS", "VIRTUAL_ENV"))
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
