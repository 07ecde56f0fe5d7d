"""The image tests record an image as tested only when every selected test passed on it,
with what the run covered: publishing counts only the complete suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conjure_sandbox import tested
from conjure_sandbox.build import host_platform
from conjure_sandbox.engine import local_images
from conjure_sandbox.version import package_version
from tests.integration.conftest import ROOT, run_invoke

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = "conjure-sandbox-test/recorded"


def _image_tests(tested: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "tests/images", "--variant", "minimal"),
            *("--image", IMAGE, *selection, "-p", "no:cacheprovider"),
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
    assert written["coverage"]["markers"] == ""
    assert written["coverage"]["skipped"] == 0
    assert written["coverage"]["passed"] > 10
    assert "complete suite" in passed.stdout

    # A run of part of the suite is recorded apart, as partial, and does not replace it.
    part = _image_tests(tmp_path / "ok", "-m", "contract", "-k", "not tmp")
    assert part.returncode == 0, part.stdout[-3000:]
    assert "PARTIAL run (-m 'contract', -k 'not tmp'" in part.stdout
    assert path.exists()
    (partial,) = (tmp_path / "ok").glob("*.partial.json")
    assert json.loads(partial.read_text())["coverage"]["deselected"] > 0
    records = tested.load(tmp_path / "ok")
    assert tested.untested_platforms(records, "minimal", image_id, [host_platform()]) == {}

    # The bare base runs as root: the contract fails and nothing is recorded.
    subprocess.run(["docker", "tag", local_base, ref], check=True)
    try:
        failed = _image_tests(tmp_path / "failed")
        assert failed.returncode == 1, failed.stdout[-3000:]
        assert not (tmp_path / "failed").exists()
    finally:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)
