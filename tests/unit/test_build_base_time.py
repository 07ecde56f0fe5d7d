"""A base without a creation time: every file a build writes takes that time, so a build
is refused in one line with the way to get the base back; a dry run only notes it."""

from __future__ import annotations

import pytest

from conjure_sandbox.build import _without_base_time
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan

PLAN = BuildPlan(targets=(), notes=("an earlier note",))


def test_a_dry_run_notes_a_base_not_pulled_yet() -> None:
    plan = _without_base_time(PLAN, "debian:trixie-slim@sha256:ab", local=False, dry_run=True)
    assert plan.notes[0] == "an earlier note"
    assert plan.notes[1].startswith("debian:trixie-slim@sha256:ab is not pulled yet")


@pytest.mark.parametrize(
    ("local", "fix"),
    [(True, "rebuild it with `invoke base`"), (False, "pull it again with `docker pull base:1`")],
)
def test_a_build_is_refused_with_the_way_to_get_the_base_back(local: bool, fix: str) -> None:
    with pytest.raises(SandboxError) as refused:
        _without_base_time(PLAN, "base:1", local=local, dry_run=False)
    assert "the engine gave no creation time for base base:1" in str(refused.value)
    assert fix in str(refused.value)
    assert "\n" not in str(refused.value)
