"""The GitHub workflows take their matrix from the catalogue and use every field of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.matrix import RUNNERS, ci_matrix

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
CATALOGUE = load_catalogue(docker_dir())
MATRIX = ci_matrix(CATALOGUE)["include"]


def _load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def test_matrix_has_every_variant_on_every_platform_on_a_native_runner() -> None:
    pairs = {(m["variant"], m["platform"]) for m in MATRIX}
    assert pairs == {(v.name, p) for v in CATALOGUE for p in v.platforms}
    assert {m["runner"] for m in MATRIX if m["platform"] == "linux/arm64"} == {"ubuntu-24.04-arm"}
    assert {m["runner"] for m in MATRIX if m["platform"] == "linux/amd64"} == {"ubuntu-24.04"}
    assert len({m["slug"] for m in MATRIX}) == len(MATRIX)


@pytest.mark.parametrize(
    ("workflow", "job", "source"),
    [
        ("ci.yml", "images", "check"),
        ("docker.yml", "build", "check-version"),
    ],
)
def test_matrix_jobs_read_the_catalogue_matrix_and_only_its_fields(
    workflow: str, job: str, source: str
) -> None:
    jobs = _load(workflow)["jobs"]
    matrix_step = next(s for s in jobs[source]["steps"] if s.get("id") == "matrix")
    assert matrix_step["run"] == 'echo "matrix=$(invoke matrix)" >> "$GITHUB_OUTPUT"'
    assert jobs[job]["strategy"]["matrix"] == f"${{{{ fromJSON(needs.{source}.outputs.matrix) }}}}"
    assert jobs[job]["runs-on"] == "${{ matrix.runner }}"
    used = set(re.findall(r"matrix\.(\w+)", yaml.safe_dump(jobs[job])))
    assert used <= set(MATRIX[0]), used - set(MATRIX[0])
    assert "runner" in used


def test_actions_are_pinned_by_commit_and_permissions_are_per_job() -> None:
    for name in ("ci.yml", "docker.yml"):
        workflow = _load(name)
        assert workflow["permissions"] == {}
        for job_name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name}: {job_name} has no permissions of its own"
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(
                        r"[\w.-]+/[\w.-]+(?:/[\w.-]+)*@[0-9a-f]{40}", step["uses"]
                    ), step["uses"]


def test_publishing_is_never_cancelled_and_writes_only_where_it_must() -> None:
    workflow = _load("docker.yml")
    assert workflow["concurrency"]["cancel-in-progress"] is False
    writers = {
        n for n, j in workflow["jobs"].items() if j["permissions"].get("packages") == "write"
    }
    assert writers == {"build", "merge"}
    signers = {
        n for n, j in workflow["jobs"].items() if j["permissions"].get("id-token") == "write"
    }
    assert signers == {"merge", "pypi"}
    assert set(workflow["jobs"]["check-version"]["permissions"].values()) == {"read"}
    # Every job that can write packages or get an OIDC token runs in a protected environment.
    environments = {n: j.get("environment") for n, j in workflow["jobs"].items()}
    assert environments == {
        "check-version": None,
        "build": "publish",
        "merge": "publish",
        "pypi": "pypi",
    }


def test_runners_cover_the_catalogue_platforms() -> None:
    assert {p for v in CATALOGUE for p in v.platforms} <= set(RUNNERS)


def test_a_release_needs_its_commits_ci_and_its_own_concurrency_group() -> None:
    workflow = _load("docker.yml")
    group = workflow["concurrency"]["group"]
    assert "github.ref" in group  # a release never waits in the same slot as another run
    steps = workflow["jobs"]["check-version"]["steps"]
    runs = next(s for s in steps if "gh run list" in str(s.get("run")))
    assert runs["if"] == "github.event_name == 'release'"
    assert "--json event,headBranch,conclusion" in runs["run"]
    gate = next(s for s in steps if s.get("id") == "gate")
    assert "invoke gate --runs ci-runs.json" in gate["run"]
    # Nothing builds, pushes or signs before the gate: every other job needs check-version.
    jobs = workflow["jobs"]
    assert jobs["build"]["needs"] == "check-version"
    assert "check-version" in jobs["merge"]["needs"]


def test_every_merge_shares_one_group_and_only_pull_requests_cancel_ci() -> None:
    merge = _load("docker.yml")["jobs"]["merge"]
    # A constant: the same group whatever the event, ref or run.
    assert merge["concurrency"] == {"group": "docker-merge", "cancel-in-progress": False}
    ci = _load("ci.yml")
    assert ci["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    # A push run's group names its commit, so a later push never cancels or replaces it.
    assert "github.sha" in ci["concurrency"]["group"]
    assert ci[True]["push"]["branches"] == ["main", "release/**"]  # yaml reads "on" as True


def test_the_release_signs_each_verified_digest_by_name_and_pins_the_wheel() -> None:
    jobs = _load("docker.yml")["jobs"]
    sign = next(s for s in jobs["merge"]["steps"] if "cosign sign" in str(s.get("run")))
    # --recursive would sign whatever the index names, tested or not.
    assert "--recursive" not in sign["run"]
    assert "< published.txt" in sign["run"]  # repo@sha256 lines, never a tag
    merge = next(s for s in jobs["merge"]["steps"] if "invoke publish" in str(s.get("run")))
    assert "--record release.json" in merge["run"]
    assert "--maintenance" in merge["run"]
    pypi = jobs["pypi"]
    assert pypi["if"] == "github.event_name == 'release'"
    runs = [s.get("run", "") for s in pypi["steps"]]
    assert runs.index("invoke pin release.json") < next(
        i for i, r in enumerate(runs) if "python -m build" in r
    )
    publish = pypi["steps"][-1]
    assert publish["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert publish["with"] == {"attestations": True}


def test_jobs_that_can_write_packages_install_only_hash_pinned_tools() -> None:
    requirements = WORKFLOWS.parent / "requirements" / "publish.txt"
    pins = [line for line in requirements.read_text().splitlines() if re.match(r"^[a-z]", line)]
    assert pins
    assert all("==" in line for line in pins)
    assert requirements.read_text().count("--hash=sha256:") >= len(pins)
    for job in _load("docker.yml")["jobs"].values():
        for step in job["steps"]:
            run = str(step.get("run", ""))
            if "pip install" in run:
                assert "--require-hashes" in run or "--no-deps -e ." in run, run
            if "nox " in run:  # nox sessions install their own tools: pinned the same way
                assert step["env"]["CONJURE_REQUIREMENTS"] == ".github/requirements/publish.txt"


def test_the_engine_job_runs_the_engine_tests_on_the_runners_docker_as_installed() -> None:
    """GitHub's runners cannot run here: this reads the job, which runs only there."""
    job = _load("ci.yml")["jobs"]["engine"]
    assert set(job["strategy"]["matrix"]["runner"]) == set(RUNNERS.values())
    assert job["env"]["CONJURE_ENGINES"] == "installed"
    assert job["env"]["CONJURE_REQUIRE_DOCKER"] == "1"
    steps = job["steps"]
    used = " ".join(str(s.get("uses", "")) for s in steps)
    run = "\n".join(str(s.get("run", "")) for s in steps)
    # Docker exactly as installed: no buildx set-up, no provisioning, no daemon.json.
    assert "setup-buildx-action" not in used
    assert "provision-engine" not in run
    assert "daemon.json" not in run
    assert "pytest tests/integration/test_engines.py" in run
    assert re.search(r"registry:2@sha256:[0-9a-f]{64}", run)


def test_the_vulnerability_gate_runs_before_anything_is_merged_or_signed() -> None:
    steps = _load("docker.yml")["jobs"]["merge"]["steps"]
    runs = [str(s.get("run", "")) for s in steps]
    gate = next(i for i, r in enumerate(runs) if r.startswith("invoke scan"))
    merge = next(i for i, r in enumerate(runs) if "invoke publish" in r)
    sign = next(i for i, r in enumerate(runs) if "cosign sign" in r)
    assert gate < merge < sign
    download = steps[gate - 1]
    # The scanner's installer, pinned by commit like every action here.
    assert re.fullmatch(r"anchore/scan-action/download-grype@[0-9a-f]{40}", download["uses"])
    assert "steps.grype.outputs.cmd" in steps[gate]["env"]["GRYPE"]
