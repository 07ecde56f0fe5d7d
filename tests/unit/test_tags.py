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
        ("1.2.6", "minimal", ("1.3.0",), ("1.2.6-minimal",), ("1.2-minimal",)),
        ("1.3.1", "full", ("1.2.5", "1.3.0", "2.0.0"), ("1.3.1",), ("1.3", "1")),
        ("2.0.0", "full", ("1.3.0", "2.0.0-rc.1"), ("2.0.0",), ("2.0", "2", "latest")),
        # a rerun of the newest release moves nothing backwards
        ("1.3.0", "full", ("1.3.0",), ("1.3.0",), ("1.3", "1", "latest")),
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
    assert edge_tags("3f0c2a4e1b77aa", FULL).all == ("sha-3f0c2a4", "edge")
    assert edge_tags("3F0C2A4E", MINIMAL).all == ("sha-3f0c2a4-minimal", "edge-minimal")
    with pytest.raises(SandboxError, match="not a git commit"):
        edge_tags("main", FULL)


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


def test_releases_are_read_from_the_default_variants_tags() -> None:
    tags = ["latest", "0.1", "0.1.0", "0.1.0-minimal", "0.2.0-rc.1", "0.1.1", "edge", "sha-abc1234"]
    assert [str(v) for v in releases(tags)] == ["0.1.0", "0.1.1"]


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
        check_newer(version, published, maintenance=maintenance)
    else:
        with pytest.raises(SandboxError, match="lower than the latest release"):
            check_newer(version, published, maintenance=maintenance)
