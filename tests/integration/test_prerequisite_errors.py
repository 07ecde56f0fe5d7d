"""Each missing prerequisite is one line on stderr with its fix, never a traceback.

These run the real ``invoke`` against the real engine, with one piece taken
away for real: a socket nobody listens on, the buildx plugin hidden in a
private mount namespace, a platform no binfmt handler serves, a base image
that was never built, a Dockerfile that was deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conjure_sandbox.config import docker_dir
from tests.integration.conftest import ROOT, run_invoke

pytestmark = pytest.mark.docker


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "(fix: " in lines[0]
    return lines[0]


def test_no_engine() -> None:
    result = run_invoke(
        "build",
        "--variant",
        "minimal",
        "--dry-run",
        env={"DOCKER_HOST": "unix:///nonexistent.sock"},
    )
    line = _one_error_line(result)
    assert "no Docker engine answers" in line
    assert "provision-engine.sh" in line


def _buildx_plugin_dir() -> Path:
    out = subprocess.run(
        ["docker", "info", "--format", "{{json .ClientInfo.Plugins}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    plugins = json.loads(out.stdout)
    return Path(next(p["Path"] for p in plugins if p["Name"] == "buildx")).parent


@pytest.mark.skipif(os.geteuid() != 0, reason="hiding the plugin needs a mount namespace (root)")
def test_no_buildx() -> None:
    hidden = _buildx_plugin_dir()
    script = (
        f"mount -t tmpfs tmpfs {hidden} && "
        f"exec {sys.executable} -m invoke build --variant minimal --dry-run"
    )
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    line = _one_error_line(result)
    assert "docker buildx is not installed" in line


def test_platform_without_emulation() -> None:
    # No binfmt handler is registered for riscv64 here, as none is for arm64 on a host
    # without qemu-user-static: the same check refuses both.
    result = run_invoke("build", "--variant", "minimal", "--platform", "linux/riscv64", "--dry-run")
    line = _one_error_line(result)
    assert "cannot build linux/riscv64" in line
    assert "linux/amd64" in line


def test_base_image_missing() -> None:
    env = {"CONJURE_BASE": "local", "CONJURE_LOCAL_BASE": "conjure-sandbox/base:never-built"}
    line = _one_error_line(run_invoke("build", "--variant", "minimal", "--dry-run", env=env))
    assert "base image conjure-sandbox/base:never-built not found" in line
    assert "invoke base" in line


def test_unpullable_upstream_falls_back_to_the_local_base_loudly(local_base: str) -> None:
    env = {
        "CONJURE_BASE": "upstream",
        "CONJURE_UPSTREAM_BASE": "127.0.0.1:9/nowhere/debian:trixie-slim",
    }
    result = run_invoke("build", "--variant", "minimal", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "WARNING: base image 127.0.0.1:9/nowhere/debian:trixie-slim cannot be pulled" in (
        result.stdout
    )
    assert f"--build-arg BASE={local_base}" in result.stdout


def test_publishing_never_falls_back() -> None:
    env = {"CONJURE_BASE": "upstream", "CONJURE_UPSTREAM_BASE": "127.0.0.1:9/nowhere/debian:13"}
    line = _one_error_line(
        run_invoke("build", "--variant", "minimal", "--push", "--dry-run", env=env)
    )
    assert "publishing never falls back" in line


def test_dockerfile_missing(tmp_path: Path) -> None:
    fork = tmp_path / "docker"
    shutil.copytree(docker_dir(), fork)
    (fork / "Dockerfile.node").unlink()
    result = run_invoke(
        "build", "--variant", "node", "--dry-run", env={"CONJURE_DOCKER_DIR": str(fork)}
    )
    line = _one_error_line(result)
    assert f"Dockerfile {fork / 'Dockerfile.node'} does not exist" in line


def test_unknown_variant() -> None:
    line = _one_error_line(run_invoke("build", "--variant", "gpu", "--dry-run"))
    assert "unknown variant 'gpu'" in line
    assert "full, python, node, minimal" in line


def test_doctor_reports_everything_present() -> None:
    result = run_invoke("doctor")
    assert result.returncode == 0, result.stdout
    assert "MISSING" not in result.stdout
    assert "platforms linux/amd64, linux/arm64" in result.stdout
