"""The tag rules as a table: version x variant x what the registry already holds."""

from __future__ import annotations

import pytest

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.tags import (
    check_newer,
    edge_tags,
    parse_version,
    release_tags,
    releases,
    version_tag,
)

CATALOGUE = load_catalogue(docker_dir())
FULL, MINIMAL = CATALOGUE.get("full"), CATALOGUE.get("minimal")
# A repository whose minimal variant is released up to 1.6.0, its default only to 1.2.3.
MINIMAL_TO_1_6 = (
    "1.2.3",
    "1.2.3-minimal",
    "1.3.0-minimal",
    "1.6.0-minimal",
    "1.6-minimal",
    "1-minimal",
    "minimal",
    "latest",
)


@pytest.mark.parametrize(
    ("version", "variant", "published", "immutable", "floating"),
    [
        ("1.2.3", "full", (), ("1.2.3",), ("1.2", "1", "latest")),
        ("1.2.3", "minimal", (), ("1.2.3-minimal",), ("1.2-minimal", "1-minimal", "minimal")),
        # 0.x: no bare major tag
        ("0.1.0", "full", (), ("0.1.0",), ("0.1", "latest")),
        ("0.1.0", "python", (), ("0.1.0-python",), ("0.1-python", "python")),
        # prereleases get their exact tag only
        ("0.2.0-rc.1", "full", ("0.1.0",), ("0.2.0-rc.1",), ()),
        ("0.2.0-rc.1", "node", (), ("0.2.0-rc.1-node",), ()),
        # floating tags only move forward
        ("1.2.6", "full", ("1.2.5", "1.3.0"), ("1.2.6",), ("1.2",)),
        ("1.2.6", "minimal", ("1.3.0-minimal",), ("1.2.6-minimal",), ("1.2-minimal",)),
        ("1.3.1", "full", ("1.2.5", "1.3.0", "2.0.0"), ("1.3.1",), ("1.3", "1")),
        ("2.0.0", "full", ("1.3.0", "2.0.0-rc.1"), ("2.0.0",), ("2.0", "2", "latest")),
        # a rerun of the newest release moves nothing backwards
        ("1.3.0", "full", ("1.3.0",), ("1.3.0",), ("1.3", "1", "latest")),
        # each variant is judged by its own releases, not the default's
        ("1.2.4", "minimal", MINIMAL_TO_1_6, ("1.2.4-minimal",), ("1.2-minimal",)),
        ("1.3.0", "minimal", MINIMAL_TO_1_6, ("1.3.0-minimal",), ("1.3-minimal",)),
        (
            "1.7.0",
            "minimal",
            MINIMAL_TO_1_6,
            ("1.7.0-minimal",),
            ("1.7-minimal", "1-minimal", "minimal"),
        ),
        ("1.2.4", "full", MINIMAL_TO_1_6, ("1.2.4",), ("1.2", "1", "latest")),
        (
            "1.6.0",
            "python",
            ("1.6.0-minimal", "1.7.0-python-rc.1"),
            ("1.6.0-python",),
            ("1.6-python", "1-python", "python"),
        ),
    ],
)
def test_release_tags(
    version: str,
    variant: str,
    published: tuple[str, ...],
    immutable: tuple[str, ...],
    floating: tuple[str, ...],
) -> None:
    tags = release_tags(version, CATALOGUE.get(variant), published)
    assert tags.immutable == immutable
    assert tags.floating == floating


def test_main_branch_builds_get_edge_and_sha_never_latest() -> None:
    assert edge_tags("3f0c2a4e1b77aa", FULL).all == ("sha-3f0c2a4e1b77", "edge")
    assert edge_tags("3F0C2A4E1B77AA", MINIMAL).all == ("sha-3f0c2a4e1b77-minimal", "edge-minimal")
    for bad in ("main", "3f0c2a4", "3f0c2a4e1b7"):  # seven or eleven hex digits could collide
        with pytest.raises(SandboxError, match="at least 12 hex digits"):
            edge_tags(bad, FULL)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1.2", "not a semver version"),
        ("01.2.3", "not a semver version"),
        ("1.2.3.4", "not a semver version"),
        ("", "not a semver version"),
        ("v1.2.3", "starts with 'v'"),
        ("1.2.3+build.5", "build metadata"),
    ],
)
def test_bad_versions_are_one_line_errors(bad: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message) as caught:
        parse_version(bad)
    assert "\n" not in str(caught.value)
    assert "fix:" in str(caught.value)


def test_version_tag_is_image_version_suffix() -> None:
    assert version_tag("r/i", "0.1.0", MINIMAL) == "r/i:0.1.0-minimal"
    assert version_tag("r/i", "0.1.0", FULL) == "r/i:0.1.0"


def test_releases_are_read_from_each_variants_own_tags() -> None:
    tags = [
        "latest",
        "0.1",
        "0.1.0",
        "0.1.0-minimal",
        "0.2.0-rc.1",
        "0.1.1",
        "edge",
        "sha-abc1234",
        "0.3.0-rc.1-minimal",
        "0.1.2-minimal",
        "minimal",
        "0.1-minimal",
    ]
    assert [str(v) for v in releases(tags, FULL)] == ["0.1.0", "0.1.1"]
    assert [str(v) for v in releases(tags, MINIMAL)] == ["0.1.0", "0.1.2"]
    assert releases(tags, CATALOGUE.get("node")) == []


@pytest.mark.parametrize(
    ("version", "variant", "floating"),
    [
        # a patch on an older line moves only that line's tag, never the major or latest
        ("1.3.1", "minimal", ("1.3-minimal",)),
        ("1.3.1", "full", ("1.3",)),
        ("1.3.1", "node", ("1.3-node",)),
        # and not even that when the line already has a newer release
        ("1.3.0", "minimal", ()),
    ],
)
def test_a_maintenance_release_moves_only_its_own_line(
    version: str, variant: str, floating: tuple[str, ...]
) -> None:
    published = (*MINIMAL_TO_1_6, "1.3.0", "1.6.0", "1.3.0-node", "1.3.1-minimal")
    tags = release_tags(version, CATALOGUE.get(variant), published, maintenance=True)
    assert tags.floating == floating


@pytest.mark.parametrize(
    ("version", "published", "maintenance", "ok"),
    [
        ("0.1.0", (), False, True),
        ("0.2.0", ("0.1.0",), False, True),
        ("0.1.0", ("0.1.0",), False, True),  # a rerun completes a publish
        ("0.0.9", ("0.1.0",), False, False),
        ("0.1.0-rc.2", ("0.1.0",), False, False),
        ("1.2.6", ("1.2.5", "1.3.0"), False, False),
        ("1.2.6", ("1.2.5", "1.3.0"), True, True),
        ("1.2.4", ("1.2.5", "1.3.0"), True, False),
    ],
)
def test_a_release_is_newer_than_what_is_published(
    version: str, published: tuple[str, ...], maintenance: bool, ok: bool
) -> None:
    if ok:
        check_newer(version, published, FULL, maintenance=maintenance)
    else:
        with pytest.raises(SandboxError, match="lower than full's latest release"):
            check_newer(version, published, FULL, maintenance=maintenance)


def test_a_variant_release_is_checked_against_that_variants_releases() -> None:
    with pytest.raises(SandboxError, match=r"lower than minimal's latest release 1\.6\.0"):
        check_newer("1.2.4", MINIMAL_TO_1_6, MINIMAL)
    check_newer("1.2.4", MINIMAL_TO_1_6, FULL)  # full was released up to 1.2.3 only
