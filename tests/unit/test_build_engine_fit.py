"""A plan fitted to the engine that will run it (``build._fit_to_builder``), decided from
engine facts alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conjure_sandbox.build import _fit_to_builder
from conjure_sandbox.cache import CacheStore
from conjure_sandbox.compression import ZSTD
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan
from tests.unit.test_plan import _plan
from tests.unit.test_prerequisites import AMD64_ONLY, FULL

CLASSIC = replace(AMD64_ONLY, platforms=("linux/amd64", "linux/arm64"))
STORE = CacheStore("local", "/c")


def _fit(plan: BuildPlan, facts: object) -> tuple[BuildPlan, BuildPlan]:
    said: list[str] = []
    fitted = _fit_to_builder(plan, plan, facts, ZSTD, said.append)  # type: ignore[arg-type]
    assert said == []  # the notes go under the summary, not into the log
    return fitted


def test_the_classic_store_builds_without_cache_export_and_sbom_and_says_so_once() -> None:
    plan = _plan(
        variants=("minimal", "node"),
        platforms=("linux/amd64",),
        load=True,
        cache_store=STORE,
        sbom="gen:1",
    )
    assert all(t.cache_to and t.sbom for t in plan.targets)
    fitted, stale = _fit(plan, CLASSIC)
    for target in (*fitted.targets, *stale.targets):
        argv = target.buildx_argv()
        assert "--cache-to" not in argv
        assert not any(a.startswith("type=sbom") for a in argv)
        assert "--cache-from" in argv  # imports still work on the classic store
    (note,) = fitted.notes
    assert note.startswith(
        "the engine's classic image store: built without a build cache export and SBOMs"
    )


def test_the_containerd_store_keeps_the_plan_as_it_is() -> None:
    plan = _plan(
        variants=("minimal",), platforms=("linux/amd64",), load=True, cache_store=STORE, sbom="g:1"
    )
    fitted, _ = _fit(plan, FULL)
    assert fitted == plan


def test_several_platforms_on_the_classic_store_are_refused_before_building() -> None:
    plan = _plan(variants=("minimal",), platforms=("linux/amd64", "linux/arm64"), load=True)
    with pytest.raises(SandboxError, match="loading a multi-platform image needs"):
        _fit(plan, CLASSIC)
    cache_only = _plan(variants=("minimal",), platforms=("linux/amd64", "linux/arm64"))
    with pytest.raises(SandboxError, match="builds one platform at a time"):
        _fit(cache_only, CLASSIC)
