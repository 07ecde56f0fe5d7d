"""Image tags derived from the package version (pure; no engine)."""

from __future__ import annotations

import semver

from conjure_sandbox.catalogue import Variant
from conjure_sandbox.errors import SandboxError


def parse_version(version: str) -> semver.Version:
    """A semver version usable in a tag: build metadata (``+...``) cannot be one."""
    try:
        parsed = semver.Version.parse(version)
    except ValueError:
        raise SandboxError(
            f"{version!r} is not a semver version", "use X.Y.Z or X.Y.Z-rc.N"
        ) from None
    if parsed.build:
        raise SandboxError(
            f"{version!r} has build metadata (+{parsed.build}), which a Docker tag cannot hold",
            "drop the +... part",
        )
    return parsed


def version_tag(image: str, version: str, variant: Variant) -> str:
    """The immutable tag of one variant at one version, e.g. ``image:0.1.0-minimal``."""
    return f"{image}:{parse_version(version)}{variant.tag_suffix}"
