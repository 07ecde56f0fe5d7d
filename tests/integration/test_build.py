"""``invoke build`` against the real engine: multi-platform load, failure isolation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conjure_sandbox.config import docker_dir
from tests.integration.conftest import run_invoke

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_minimal_for_amd64_and_arm64_loads_as_one_image() -> None:
    tag = "conjure-sandbox-test/multi:0"
    result = run_invoke(
        "build",
        *("--variant", "minimal", "--platform", "linux/amd64", "--platform", "linux/arm64"),
        *("--load", "--tag", tag),
        env={"CONJURE_BASE": "local"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "minimal    linux/amd64,linux/arm64" in result.stdout
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        out = subprocess.run(
            [
                *("docker", "run", "--rm", "--platform", platform, f"{tag}-minimal"),
                *("python3", "-c", "import platform; print(platform.machine())"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == machine


def test_one_failing_variant_does_not_stop_the_others(tmp_path: Path) -> None:
    fork = tmp_path / "docker"
    shutil.copytree(docker_dir(), fork)
    broken = fork / "Dockerfile.node"
    broken.write_text(
        broken.read_text().replace("USER 1000:1000", "RUN echo 'node step broke' >&2 && false")
    )
    result = run_invoke(
        "build",
        *("--variant", "node", "--variant", "minimal", "--tag", "conjure-sandbox-test/fail:0"),
        env={"CONJURE_BASE": "local", "CONJURE_DOCKER_DIR": str(fork)},
    )
    assert result.returncode == 1
    summary = result.stdout[result.stdout.index("variant    platforms") :]
    assert "node       linux/amd64" in summary
    assert "FAILED" in summary.splitlines()[1]
    assert summary.splitlines()[2].endswith("ok")
    assert "node step broke" in summary
    assert result.stderr.strip() == "error: build failed for node (fix: see the log tail above)"
