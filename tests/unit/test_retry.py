"""The retry policies: bounded, named, saying each retry on stderr."""

from __future__ import annotations

import pytest

from conjure_sandbox.retry import Policy


def test_a_policy_retries_its_count_then_stops_saying_each_retry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = Policy("test", retries=2)
    decisions = [policy.again("GET /v2/", ": HTTP 503", attempt) for attempt in range(4)]
    assert decisions == [True, True, False, False]
    assert capsys.readouterr().err.splitlines() == [
        "warning: GET /v2/: HTTP 503; retry 1 of 2",
        "warning: GET /v2/: HTTP 503; retry 2 of 2",
    ]
    assert policy.tries == 3
