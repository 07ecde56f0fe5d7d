"""Who may publish: the gate's decisions, and docker.yml's own gate step run as written.

GitHub itself cannot run here: the trigger is the environment GitHub would
set, and ``ci-runs.json`` stands in for what ``gh run list`` would answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conjure_sandbox.gate import Trigger, refusal

ROOT = Path(__file__).resolve().parents[2]
PUSH_ON_MAIN = {"event": "push", "headBranch": "main", "conclusion": "success"}
PR_RUN = {"event": "pull_request", "headBranch": "main", "conclusion": "success"}


@pytest.mark.parametrize(
    ("trigger", "runs", "problem"),
    [
        (Trigger("workflow_dispatch", "refs/heads/feature"), [], "only from main"),
        (Trigger("push", "refs/heads/feature"), [], "only from main"),
        (Trigger("pull_request", "refs/pull/7/merge"), [], "never publishes"),
        (Trigger("release", "refs/tags/v1.0.0", "main"), [PR_RUN], "has not passed"),
        (Trigger("release", "refs/tags/v1.0.0", "main"), [], "has not passed"),
        (
            Trigger("release", "refs/tags/v1.0.0", "main"),
            [{**PUSH_ON_MAIN, "conclusion": "failure"}],
            "has not passed",
        ),
        (
            Trigger("release", "refs/tags/v1.0.0", "main"),
            [{**PUSH_ON_MAIN, "headBranch": "feature"}],
            "has not passed",
        ),
        (Trigger("release", "refs/tags/v1.0.0", "feature"), [PUSH_ON_MAIN], "not feature"),
        (Trigger("release", "refs/heads/main", "main"), [PUSH_ON_MAIN], "only a v* tag"),
        (
            Trigger("release", "refs/tags/v1.2.6", "release/1.2"),
            [PUSH_ON_MAIN],
            "push run on release/1.2",
        ),
    ],
)
def test_refused(trigger: Trigger, runs: list[dict[str, str]], problem: str) -> None:
    found = refusal(trigger, runs)
    assert found is not None
    assert problem in found


def test_allowed() -> None:
    assert refusal(Trigger("push", "refs/heads/main"), []) is None
    assert refusal(Trigger("workflow_dispatch", "refs/heads/main"), []) is None
    release = Trigger("release", "refs/tags/v1.0.0", "main")
    assert refusal(release, [PR_RUN, PUSH_ON_MAIN]) is None
    assert not release.maintenance
    patch = Trigger("release", "refs/tags/v1.2.6", "release/1.2")
    assert refusal(patch, [{**PUSH_ON_MAIN, "headBranch": "release/1.2"}]) is None
    assert patch.maintenance


def _gate_step() -> dict[str, Any]:
    workflow = yaml.safe_load((ROOT / ".github/workflows/docker.yml").read_text())
    steps = workflow["jobs"]["check-version"]["steps"]
    return dict(next(s for s in steps if s.get("id") == "gate"))


def _run_gate(tmp_path: Path, env: dict[str, str], runs: list[dict[str, str]] | None) -> Any:
    if runs is not None:
        (tmp_path / "ci-runs.json").write_text(json.dumps(runs))
    output = tmp_path / "github-output"
    # The step as written, with this interpreter's invoke finding tasks.py from tmp_path.
    wrapper = f'invoke() {{ "{sys.executable}" -m invoke --search-root "{ROOT}" "$@"; }}\n'
    result = subprocess.run(
        ["bash", "-e", "-c", wrapper + _gate_step()["run"]],
        cwd=tmp_path,
        env={
            **os.environ,
            "GITHUB_OUTPUT": str(output),
            "RELEASE_TARGET": "",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return result, output.read_text() if output.exists() else ""


@pytest.mark.parametrize(
    ("env", "runs", "message"),
    [
        (
            {"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_REF": "refs/heads/feature"},
            None,
            "a workflow_dispatch run publishes only from main",
        ),
        (
            {
                "GITHUB_EVENT_NAME": "release",
                "GITHUB_REF": "refs/tags/v0.2.0",
                "RELEASE_TARGET": "main",
            },
            [PR_RUN],
            "ci.yml has not passed on this commit in a push run on main",
        ),
    ],
    ids=["dispatch from a branch", "a pull-request CI pass only"],
)
def test_the_workflows_gate_step_refuses(
    tmp_path: Path, env: dict[str, str], runs: list[dict[str, str]] | None, message: str
) -> None:
    result, output = _run_gate(tmp_path, env, runs)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"error: not publishing: {message}")
    assert output == ""  # nothing for later steps to act on


def test_the_workflows_gate_step_passes_a_release_and_says_maintenance(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_NAME": "release", "GITHUB_REF": "refs/tags/v1.2.6"}
    result, output = _run_gate(
        tmp_path,
        {**env, "RELEASE_TARGET": "release/1.2"},
        [{**PUSH_ON_MAIN, "headBranch": "release/1.2"}],
    )
    assert result.returncode == 0, result.stderr
    assert output == "maintenance=true\n"
