"""Who may enter the publishing workflow: a pure decision on the run's trigger and its CI.

- A push publishes only from main (edge images), and a manual dispatch runs
  only from main.
- A release publishes only a ``v*`` tag cut from main or from a ``release/X.Y``
  branch (a maintenance release, which moves only its own ``X.Y`` tags), and
  only once ci.yml passed on that commit in a push run on that branch: a
  pull-request run tested a merge ref with the PR's own ci.yml, so it counts
  for nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conjure_sandbox.errors import SandboxError

MAIN = "main"
MAINTENANCE_BRANCH = re.compile(r"\Arelease/\d+\.\d+\Z")


@dataclass(frozen=True)
class Trigger:
    """What started the run: GITHUB_EVENT_NAME, GITHUB_REF and a release's target branch."""

    event: str
    ref: str
    target: str = ""

    @property
    def maintenance(self) -> bool:
        """A release cut from a ``release/X.Y`` branch."""
        return self.event == "release" and bool(MAINTENANCE_BRANCH.match(self.target))


def refusal(trigger: Trigger, ci_runs: Iterable[Mapping[str, Any]]) -> str | None:
    """Why this run may not publish, or None when it may."""
    if trigger.event in ("push", "workflow_dispatch"):
        if trigger.ref != f"refs/heads/{MAIN}":
            return f"a {trigger.event} run publishes only from {MAIN}, not {trigger.ref}"
        return None
    if trigger.event != "release":
        return f"a {trigger.event} run never publishes"
    if not trigger.ref.startswith("refs/tags/v"):
        return f"a release publishes only a v* tag, not {trigger.ref}"
    if trigger.target != MAIN and not trigger.maintenance:
        return f"a release is cut from {MAIN} or release/X.Y, not {trigger.target or 'nothing'}"
    passed = [
        run
        for run in ci_runs
        if run.get("event") == "push"
        and run.get("headBranch") == trigger.target
        and run.get("conclusion") == "success"
    ]
    if not passed:
        return f"ci.yml has not passed on this commit in a push run on {trigger.target}"
    return None


def check(trigger: Trigger, runs_file: Path | None) -> Trigger:
    """Refuse in one line, or return the trigger.

    ``runs_file`` holds ``gh run list --json`` output; only a release reads it,
    and a missing file means no run passed.
    """
    runs: list[Mapping[str, Any]] = []
    if runs_file is not None and runs_file.exists():
        try:
            loaded = json.loads(runs_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SandboxError(
                f"cannot read the CI runs in {runs_file} ({error})",
                "list them with gh run list --json event,headBranch,conclusion",
            ) from None
        runs = [r for r in loaded if isinstance(r, dict)] if isinstance(loaded, list) else []
    problem = refusal(trigger, runs)
    if problem:
        raise SandboxError(
            f"not publishing: {problem}",
            "publish from main: merge there, or cut the release from main or release/X.Y "
            "once ci.yml passed on main's push run",
        )
    return trigger
