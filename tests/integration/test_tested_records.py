"""The image tests record an image as tested only when every selected test passed on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conjure_sandbox.uptodate import local_images
from conjure_sandbox.version import package_version
from tests.integration.conftest import ROOT, run_invoke

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = "conjure-sandbox-test/recorded"


def _image_tests(tested: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "tests/images", "--variant", "minimal"),
            *("--image", IMAGE, "-m", "contract", "-p", "no:cacheprovider"),
        ],
        cwd=ROOT,
        env={**os.environ, "CONJURE_TESTED_DIR": str(tested)},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def test_passing_image_is_recorded_with_its_digest_and_a_failing_one_is_not(
    tmp_path: Path, local_base: str
) -> None:
    ref = f"{IMAGE}:{package_version()}-minimal"
    built = run_invoke(
        "build",
        "--variant",
        "minimal",
        "--tag",
        f"{IMAGE}:{package_version()}",
        env={"CONJURE_BASE": "local"},
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    image_id = (local_images([ref]) or {})[ref].id

    passed = _image_tests(tmp_path / "ok")
    assert passed.returncode == 0, passed.stdout[-3000:]
    (path,) = (tmp_path / "ok").glob("*.json")
    written = json.loads(path.read_text())
    assert written["id"] == image_id
    assert written["variant"] == "minimal"
    assert written["selection"] == "contract"

    # The bare base runs as root: the contract fails and nothing is recorded.
    subprocess.run(["docker", "tag", local_base, ref], check=True)
    try:
        failed = _image_tests(tmp_path / "failed")
        assert failed.returncode == 1, failed.stdout[-3000:]
        assert not (tmp_path / "failed").exists()
    finally:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)
