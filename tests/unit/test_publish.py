"""Publish planning and the version check: pure, from hand-made facts (no engine, no registry)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.engine import LocalImage
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.publishplan import (
    PublishPlan,
    PublishRequest,
    RegistryState,
    Route,
    plan_publish,
    publish_kind,
    publish_targets,
)
from conjure_sandbox.registry import Repository, digest_of, parse_repository
from conjure_sandbox.tested import Coverage, TestedImage
from conjure_sandbox.versioncheck import Facts, check, git_version_tags, table

CATALOGUE = load_catalogue(docker_dir())
REPO = Repository("127.0.0.1:5000", "team/sandbox")
BOTH = ("linux/amd64", "linux/arm64")
COMPLETE = Coverage(passed=40)


def _local(version: str = "0.2.0", label: str | None = None) -> dict[str, LocalImage]:
    return {
        f"{REPO.name}:{version}{v.tag_suffix}": LocalImage(
            id=f"sha256:{v.name}", labels={"org.opencontainers.image.version": label or version}
        )
        for v in CATALOGUE
    }


def _records(platforms: tuple[str, ...] = BOTH, version: str = "0.2.0") -> list[TestedImage]:
    return [
        TestedImage(v.name, p, "ref", f"sha256:{v.name}", version, COMPLETE)
        for v in CATALOGUE
        for p in platforms
    ]


def _plan(**overrides: Any) -> PublishPlan:
    """A plan from the options a maintainer's publish would have, split as publish splits them."""
    version = overrides.pop("version", "0.2.0")
    request = PublishRequest(
        variants=tuple(overrides.pop("variants", ())),
        route=Route.DIGESTS if overrides.pop("from_digests", False) else Route.ENGINE,
        kind=publish_kind(overrides.pop("edge", ""), overrides.pop("maintenance", False)),
        force=overrides.pop("force", False),
    )
    published = overrides.pop("published", ("0.1.0", "0.1", "latest"))
    state: dict[str, Any] = {
        "local": _local(),
        "records": _records(),
        "remote_digests": {},
        **overrides,
    }
    state = {k: tuple(v) if isinstance(v, list) else v for k, v in state.items()}
    targets = publish_targets(CATALOGUE, request, version, REPO, published, state["records"])
    return plan_publish(targets, request, version, REPO, RegistryState(**state))


def test_version_tags_first_then_floating_tags_by_digest() -> None:
    plan = _plan()
    lines = plan.describe()
    pushes = [i for i, line in enumerate(lines) if line.lstrip().startswith("push")]
    moves = [i for i, line in enumerate(lines) if line.lstrip().startswith("move")]
    assert len(pushes) == 4
    assert max(pushes) < min(moves)
    assert f"  move          {REPO.name}:latest -> 0.2.0 (its index digest)" in lines
    assert f"  move          {REPO.name}:0.2-minimal -> 0.2.0-minimal (its index digest)" in lines


def test_untested_platform_is_refused_with_the_command_to_test_it() -> None:
    with pytest.raises(SandboxError, match=r"complete image suite on linux/arm64 \(no record\)"):
        _plan(records=_records(("linux/amd64",)))


def test_records_of_another_digest_do_not_count() -> None:
    other = [
        TestedImage(r.variant, r.platform, r.ref, "sha256:old", r.version, COMPLETE)
        for r in _records()
    ]
    with pytest.raises(SandboxError, match="not passed its complete image suite"):
        _plan(records=other)


@pytest.mark.parametrize(
    ("coverage", "found"),
    [
        (Coverage(markers="contract", passed=9), "only a run with -m 'contract'"),
        (Coverage(keywords="soffice", passed=2), "only a run with -k 'soffice'"),
        (Coverage(skipped=1, passed=39), "only a run with 1 skipped"),
        (Coverage(deselected=3, passed=37), "only a run with 3 deselected"),
        (
            Coverage(paths=("tests/images/test_smoke.py",), passed=20),
            "only a run with paths tests/images/test_smoke.py",
        ),
        (Coverage(reruns="--lf", passed=1), "only a run with --lf"),
        (Coverage(), "only a run with no test passed"),
    ],
)
def test_only_a_complete_unskipped_run_counts_as_tested(coverage: Coverage, found: str) -> None:
    partial = [
        TestedImage(r.variant, r.platform, r.ref, r.id, r.version, coverage)
        for r in _records()
        if r.platform == "linux/arm64"
    ]
    complete = [r for r in _records() if r.platform == "linux/amd64"]
    with pytest.raises(SandboxError, match=f"linux/arm64 \\({re.escape(found)}") as caught:
        _plan(records=complete + partial)
    assert "linux/amd64" not in str(caught.value).split("(fix:")[0]
    # a complete run next to the partial one is enough
    _plan(records=complete + partial + _records(("linux/arm64",)))


def test_version_tag_with_another_digest_is_refused_unless_forced() -> None:
    with pytest.raises(SandboxError, match="immutable"):
        _plan(remote_digests={"0.2.0-node": "sha256:different"})
    forced = _plan(remote_digests={"0.2.0-node": "sha256:different"}, force=True)
    assert forced.overwrites == (("0.2.0-node", "sha256:different"),)
    assert any(line.lstrip().startswith("OVERWRITE") for line in forced.describe())


def test_same_digest_is_already_there_so_a_rerun_completes() -> None:
    plan = _plan(remote_digests={"0.2.0": "sha256:full"})
    assert plan.releases[0].present == ("0.2.0",)
    assert any("already there" in line for line in plan.describe())


def test_missing_image_wrong_label_older_version_and_bad_inputs() -> None:
    with pytest.raises(SandboxError, match="is not in the engine"):
        _plan(local={})
    with pytest.raises(SandboxError, match=r"version label '0\.1\.9'"):
        _plan(local=_local(label="0.1.9"))
    with pytest.raises(SandboxError, match=r"lower than full's latest release 0\.3\.0"):
        _plan(published=("0.3.0",))
    with pytest.raises(SandboxError, match="unknown variant 'gpu'"):
        _plan(variants=("gpu",))
    with pytest.raises(SandboxError, match="build metadata"):
        _plan(version="0.2.0+7")


@pytest.mark.parametrize(
    "bad", ["conjure-sandbox", "Ghcr.io/x/y", "ghcr.io/x/y:1.0", "ghcr.io/x/y@sha256:ab", "x/y"]
)
def test_malformed_image_references_are_refused(bad: str) -> None:
    with pytest.raises(SandboxError, match="not an image repository"):
        parse_repository(bad)


def _facts(**overrides: object) -> Facts:
    options: dict[str, object] = {
        "version": "0.2.0",
        "git_tags": (),
        "image": REPO.name,
        "labels": {v.name: None for v in CATALOGUE},
        "published": ("0.1.0",),
        "installed": "0.2.0",
    }
    return Facts(**{**options, **overrides})  # type: ignore[arg-type]


def test_version_check_passes_when_every_source_agrees() -> None:
    rows = check(CATALOGUE, _facts(git_tags=("v0.2.0",), labels={"full": "0.2.0"}))
    assert all(r.ok for r in rows), table(rows)


@pytest.mark.parametrize(
    ("overrides", "source"),
    [
        ({"git_tags": ("v0.2.1",)}, "git tag on HEAD"),
        ({"git_tags": None}, "git tag on HEAD"),
        ({"labels": {"node": "0.1.0"}}, "label in node image"),
        ({"published": ("0.3.0",)}, "newer than published full releases"),
        ({"published": ("0.2.0", "0.3.0-node")}, "newer than published node releases"),
        ({"installed": "0.1.9"}, "installed package (what ensure_image() pulls from a wheel)"),
        ({"changelog_entry": False}, "CHANGELOG.md entry"),
        ({"version": "0.2"}, "package version (pyproject.toml)"),
    ],
)
def test_version_check_names_each_mismatch(overrides: dict[str, object], source: str) -> None:
    rows = check(CATALOGUE, _facts(**overrides))
    bad = [r for r in rows if not r.ok]
    assert [r.source for r in bad] == [source]
    assert "MISMATCH" in "\n".join(table(rows))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_tags_on_head_come_only_from_the_top_of_a_git_checkout(tmp_path: Path) -> None:
    assert git_version_tags(tmp_path) is None  # no checkout: not "no tag", which would pass
    checkout = tmp_path / "checkout"
    (checkout / "docker").mkdir(parents=True)
    _git(checkout, "init", "-q")
    _git(
        checkout,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    _git(checkout, "tag", "v9.9.9")
    assert git_version_tags(checkout) == ("v9.9.9",)
    # A folder inside another repository does not report that repository's tags.
    assert git_version_tags(checkout / "docker") is None


def test_a_release_tag_without_v_gets_a_fix_that_names_the_right_tag() -> None:
    rows = check(CATALOGUE, _facts(git_tags=("2.0.0",)))
    (bad,) = [r for r in rows if not r.ok]
    assert bad.fix == "release tags are v + the version: tag v0.2.0, not 2.0.0"
    (bad,) = [r for r in check(CATALOGUE, _facts(git_tags=("v2.0.0",))) if not r.ok]
    assert bad.fix == "set the version to 2.0.0 or tag v0.2.0"


def test_a_lone_platform_manifest_under_a_version_tag_is_completed_not_refused() -> None:
    # docker push (containerd store) puts a child manifest under the tag before the index.
    plan = _plan(remote_digests={"0.2.0": "sha256:child"}, lone_manifests=("0.2.0",))
    assert plan.releases[0].present == ()
    assert plan.overwrites == ()
    with pytest.raises(SandboxError, match="immutable"):
        _plan(remote_digests={"0.2.0": "sha256:child"})


def test_a_variant_release_older_than_that_variants_newest_is_refused() -> None:
    published = ("0.1.0", "0.1.0-minimal", "0.6.0-minimal", "0.6-minimal", "minimal")
    with pytest.raises(SandboxError, match=r"lower than minimal's latest release 0\.6\.0"):
        _plan(variants=("minimal",), published=published)
    # a maintenance patch of minimal's 0.2 line moves 0.2-minimal and nothing else
    plan = _plan(variants=("minimal",), published=published, maintenance=True)
    assert plan.releases[0].tags.floating == ("0.2-minimal",)
    # the other variants were never released past 0.1.0: all their tags move
    plan = _plan(variants=("node",), published=published)
    assert plan.releases[0].tags.floating == ("0.2-node", "node")


def test_a_tag_the_registry_cannot_serve_is_repaired() -> None:
    plan = _plan(unservable=("0.2.0-node",))
    (node,) = [r for r in plan.releases if r.variant == "node"]
    assert node.repair == ("0.2.0-node",)
    assert f"  repair        {REPO.name}:0.2.0-node <- " in "\n".join(plan.describe())
    assert plan.overwrites == ()


def _digest(variant: str, platform: str) -> str:
    """A stand-in digest for one variant's image on one platform."""
    return digest_of(f"{variant} {platform}".encode())


def _pushed(platforms: tuple[str, ...] = BOTH) -> list[TestedImage]:
    """Records of CI's per-platform jobs: each image tested in the registry by digest."""
    return [
        TestedImage(v.name, p, f"{REPO.name}@{_digest(v.name, p)}", "sha256:x", "0.2.0", COMPLETE)
        for v in CATALOGUE
        for p in platforms
    ]


def test_a_record_whose_ref_is_not_a_digest_is_no_tested_image() -> None:
    request = PublishRequest(variants=("minimal",), route=Route.DIGESTS)
    broken = [
        TestedImage(
            r.variant, r.platform, f"{REPO.name}@../../other", "sha256:x", "0.2.0", COMPLETE
        )
        for r in _pushed()
    ]
    with pytest.raises(SandboxError, match=r"linux/amd64 \(no record\)"):
        publish_targets(CATALOGUE, request, "0.2.0", REPO, (), broken)


def test_the_digests_route_merges_each_variant_s_tested_images_in_platform_order() -> None:
    request = PublishRequest(variants=("minimal",), route=Route.DIGESTS)
    targets = publish_targets(CATALOGUE, request, "0.2.0", REPO, ("0.1.0",), _pushed())
    (minimal,) = targets
    assert minimal.sources == tuple(
        f"{REPO.name}@{_digest('minimal', p)}" for p in CATALOGUE.get("minimal").platforms
    )
    state = RegistryState(local={}, records=tuple(_pushed()), remote_digests={})
    plan = plan_publish(targets, request, "0.2.0", REPO, state)
    assert all(r.sources == minimal.sources for r in plan.releases)
    merged = [line.split()[0] for line in plan.describe() if ":0.2.0-minimal <-" in line]
    assert merged == ["merge"]


def test_the_digests_route_refuses_a_platform_without_a_tested_image() -> None:
    request = PublishRequest(variants=("minimal",), route=Route.DIGESTS)
    with pytest.raises(SandboxError, match=r"linux/arm64 \(no record\)"):
        publish_targets(CATALOGUE, request, "0.2.0", REPO, (), _pushed(("linux/amd64",)))


def test_the_digests_route_cannot_repair_a_tag_the_registry_cannot_serve() -> None:
    request = PublishRequest(variants=("minimal",), route=Route.DIGESTS)
    targets = publish_targets(CATALOGUE, request, "0.2.0", REPO, (), _pushed())
    state = RegistryState(
        local={}, records=tuple(_pushed()), remote_digests={}, unservable=("0.2.0-minimal",)
    )
    with pytest.raises(SandboxError, match="imagetools cannot replace"):
        plan_publish(targets, request, "0.2.0", REPO, state)
