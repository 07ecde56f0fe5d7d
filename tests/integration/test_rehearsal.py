"""A local rehearsal of .github/workflows/docker.yml: its own ``run:`` lines, registry swapped.

What is swapped, and why: GHCR becomes a loopback registry of the test's own,
GitHub's run artifacts become a folder copied between attempts, PyPI is left
out (the rehearsal stops at the built wheel),
the Docker Hub base becomes the local base, the catalogue is cut down to the
minimal variant (as the default) to keep CI within budget, and the arm64 job
runs under QEMU instead of on a native runner. Steps that are GitHub actions
(checkout, login, artifacts), the cosign signature (Sigstore's OIDC) and the
release-only check that CI passed on the commit (GitHub's API) cannot run
here and are left out; the SBOM scanner image comes from Docker Hub, so
CONJURE_SBOM stays unset. Everything else runs exactly as written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from conjure_sandbox.registry import list_tags, parse_repository, tag_digest
from conjure_sandbox.version import package_version
from tests.integration.conftest import ROOT, Registry, index_platforms, raw_manifest

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]

WORKFLOW = ROOT / ".github" / "workflows" / "docker.yml"
# grype cannot run here (its vulnerability database comes from the internet); the gate's
# logic is tests/unit/test_scan.py.
SKIPPED = ("python -m pip install", "cosign sign", "invoke scan")


# This rehearses a main-branch run: steps only a release event runs (the gate that asks
# GitHub whether ci.yml passed on the commit) are left out with it.
RELEASE_ONLY = "github.event_name == 'release'"


def _runs(job: dict[str, Any]) -> list[str]:
    return [
        s["run"]
        for s in job["steps"]
        if "run" in s and not any(m in s["run"] for m in SKIPPED) and s.get("if") != RELEASE_ONLY
    ]


def _copy(destination: Path) -> Path:
    """The project as CI checks it out (without local state), with the cut-down catalogue."""
    shutil.copytree(
        ROOT, destination, ignore=shutil.ignore_patterns(".venv", ".nox", "__pycache__")
    )
    catalogue = destination / "docker" / "variants.toml"
    text = catalogue.read_text()
    minimal = text[text.index('\n[[variant]]\nname = "minimal"') :]
    header = text[: text.index("\n[[variant]]\n")]
    catalogue.write_text(
        header + minimal.replace('name = "minimal"', 'name = "minimal"\ndefault = true', 1)
    )
    return destination


def _step(command: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    assert result.returncode == 0, f"$ {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_docker_workflow_rehearsed_against_a_loopback_registry(
    make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    registry = make_registry(5007)
    image = f"{registry.host}/conjure-test/rehearsal"
    project = _copy(tmp_path / "project")
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    env = {
        "CONJURE_IMAGE": image,
        "CONJURE_BASE": "local",
        "CONJURE_TESTED_DIR": str(project / "tested"),
        "CONJURE_DOCKER_DIR": str(project / "docker"),
        "CONJURE_JUNIT_DIR": "",  # the inner nox sessions must not add to CI's totals
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": "refs/heads/main",
        "RELEASE_TAG": "",
        "MAINTENANCE": "",
        # invoke pin writes the copy's package, not the checkout the tests run from.
        "CONJURE_PINS": str(project / "src" / "conjure_sandbox" / "pins.json"),
    }
    for command in _runs(jobs["check-version"]):
        _step(command, project, env)
    matrix = json.loads((tmp_path / "github-output").read_text().split("matrix=", 1)[1])
    assert [m["platform"] for m in matrix["include"]] == ["linux/amd64", "linux/arm64"]

    def build_jobs() -> str:
        """Each matrix entry's build job; their output."""
        output = ""
        for entry in matrix["include"]:
            job_env = {
                **env,
                "VARIANT": entry["variant"],
                "PLATFORM": entry["platform"],
                "SLUG": entry["slug"],
                "BUILDER": "default",
                "EDGE": "",
            }
            for command in _runs(jobs["build"]):
                output += _step(command, project, job_env).stdout
        return output

    assert "resuming" not in build_jobs()
    # The digest artifacts each build job uploads, as a re-run downloads them.
    shutil.copytree(project / "digests", project / "recorded")
    records = sorted((project / "tested").glob("*.json"))
    assert len(records) == 2
    tested = {json.loads(p.read_text())["ref"] for p in records}
    assert all(ref.startswith(f"{image}@sha256:") for ref in tested)

    for command in _runs(jobs["merge"]):
        _step(command, project, {**env, "EDGE": ""})
    version = package_version()
    repository = parse_repository(image)
    tags = set(list_tags(repository))
    assert tags == {f"{version}-minimal", f"{'.'.join(version.split('.')[:2])}-minimal", "latest"}
    index = tag_digest(repository, f"{version}-minimal")
    assert tag_digest(repository, "latest") == index
    entries = [m["digest"] for m in raw_manifest(f"{image}@{index}")["manifests"]]
    signed = (project / "published.txt").read_text().split()
    assert signed == [f"{image}@{digest}" for digest in (index, *entries)]
    assert index_platforms(f"{image}:latest", attestations=True) == {
        "linux/amd64",
        "linux/arm64",
        "unknown/unknown",
    }
    # The merged index holds exactly the images that were tested, nothing rebuilt.
    tested_images = {m["digest"] for ref in tested for m in raw_manifest(ref).get("manifests", [])}
    merged = {m["digest"] for m in raw_manifest(f"{image}:latest")["manifests"]}
    assert merged == tested_images

    # The release's wheel, pinned to the merged index (PyPI's upload itself is left out).
    for command in _runs(jobs["pypi"]):
        _step(command, project, env)
    (wheel,) = (project / "dist").glob("conjure_sandbox-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        pins = json.loads(archive.read("conjure_sandbox/pins.json"))
    assert pins["image"] == image
    assert pins["variants"]["minimal"]["index"] == index
    platforms = pins["variants"]["minimal"]["platforms"]
    assert set(platforms.values()) <= tested_images
    assert set(platforms) == {"linux/amd64", "linux/arm64"}

    # "Re-run all jobs" after that: each build job finds its image published and tests it
    # instead of building a new one (whose digest the merge would refuse); the merge finds
    # the tags already there. A new attempt starts from an empty workspace.
    shutil.rmtree(project / "tested")
    shutil.rmtree(project / "digests")
    assert build_jobs().count("resuming: ") == 2
    for command in _runs(jobs["merge"]):
        rerun = _step(command, project, {**env, "EDGE": ""})
    assert "already there" in rerun.stdout
    assert set(list_tags(repository)) == tags
    assert tag_digest(repository, "latest") == index

    # Main-branch run of the same merge: sha and edge tags, latest untouched.
    for command in _runs(jobs["merge"]):
        _step(command, project, {**env, "EDGE": "3f0c2a4e1b77aa"})
    after = set(list_tags(repository))
    assert after - tags == {"sha-3f0c2a4e1b77-minimal", "edge-minimal"}
    assert tag_digest(repository, "latest") == index
