"""Shared gating: tests marked ``docker`` need a real engine.

Without one they skip with the reason, unless ``--require-docker`` (or
CONJURE_REQUIRE_DOCKER=1, which .ci/run sets) turns the skip into a failure,
so CI can never go green by skipping.
"""

from __future__ import annotations

import functools
import os

import pytest

from conjure_sandbox.doctor import registry_answers
from conjure_sandbox.errors import SandboxError


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-docker",
        action="store_true",
        default=os.environ.get("CONJURE_REQUIRE_DOCKER") == "1",
        help="fail, instead of skipping, tests whose engine or registry is missing",
    )


@functools.cache
def _engine_problem() -> str | None:
    from python_on_whales import docker

    from conjure_sandbox import prerequisites

    try:
        prerequisites.probe(docker)
    except SandboxError as error:
        return str(error)
    return None


@functools.cache
def _registry_problem() -> str | None:
    from conjure_sandbox.config import Settings

    registry = Settings.from_env().registry
    if registry_answers(registry):
        return None
    return f"no registry answers on {registry} (fix: run scripts/provision-engine.sh)"


def pytest_runtest_setup(item: pytest.Item) -> None:
    problems = []
    if item.get_closest_marker("docker") or item.get_closest_marker("registry"):
        problems.append(_engine_problem())
    if item.get_closest_marker("registry"):
        problems.append(_registry_problem())
    problem = next((p for p in problems if p), None)
    if problem is None:
        return
    if item.config.getoption("--require-docker"):
        pytest.fail(f"required engine missing: {problem}", pytrace=False)
    pytest.skip(problem)
