"""Which tags an image gets (pure; built on semver, no engine, no registry).

A release X.Y.Z of the default variant is tagged ``X.Y.Z``, ``X.Y``, ``X``
(not for 0.x: a bare ``0`` promises nothing) and ``latest``. Another variant
adds its suffix (``0.1.0-minimal``, ``0.1-minimal``) and takes its own name
(``minimal``) where the default takes ``latest``, in the manner of
docker-library's ``slim`` tags. A prerelease gets only its exact tag. Floating
tags only move forward, each variant judged by its own releases, and
main-branch builds get ``edge`` and ``sha-`` tags, never ``latest``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import semver

from conjure_sandbox.catalogue import Variant
from conjure_sandbox.errors import SandboxError


def parse_version(version: str) -> semver.Version:
    """A semver version usable in a tag: ``X.Y.Z`` or ``X.Y.Z-pre``, no ``v``, no ``+build``."""
    if version[:1] in ("v", "V"):
        raise SandboxError(
            f"{version!r} starts with 'v'; versions here are bare semver",
            f"use {version[1:]!r} (the git tag is v + the version)",
        )
    try:
        parsed = semver.Version.parse(version)
    except (ValueError, TypeError):
        raise SandboxError(
            f"{version!r} is not a semver version", "use X.Y.Z or X.Y.Z-rc.N, without leading zeros"
        ) from None
    if parsed.build:
        raise SandboxError(
            f"{version!r} has build metadata (+{parsed.build}), which a Docker tag cannot hold",
            "drop the +... part",
        )
    return parsed


@dataclass(frozen=True)
class TagSet:
    """Tags for one variant: immutable ones are pushed first, floating ones moved last."""

    immutable: tuple[str, ...]
    floating: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.immutable + self.floating


def git_tag(version: str) -> str:
    """The git tag a release is cut under: ``v`` and the version."""
    return f"v{parse_version(version)}"


def split_tag(ref: str) -> tuple[str, str]:
    """``host:port/path:tag`` -> (``host:port/path``, ``tag``); a ref without tag is refused."""
    repository, _, tag = ref.rpartition(":")
    if not repository or "/" in tag:
        raise SandboxError(f"{ref!r} names no tag", "use host[:port]/path:tag")
    return repository, tag


def version_tag(image: str, version: str, variant: Variant) -> str:
    """The immutable tag of one variant at one version, e.g. ``image:0.1.0-minimal``."""
    return prefixed_tag(f"{image}:{parse_version(version)}", variant)


def prefixed_tag(prefix: str, variant: Variant) -> str:
    """A reference given as a prefix (``--tag repo:0``) for one variant: ``repo:0-node``."""
    return f"{prefix}{variant.tag_suffix}"


def floating_name(variant: Variant) -> str:
    """What stands for ``latest`` in a variant: ``latest`` itself, or the variant's name."""
    return "latest" if variant.default else variant.name


def releases(tags: Iterable[str], variant: Variant) -> list[semver.Version]:
    """The final releases of ``variant`` among a repository's tags, oldest first.

    Each variant counts its own ``X.Y.Z<suffix>`` tags: minimal's floating
    tags follow minimal's releases, whatever the default variant did.
    """
    found = []
    for tag in tags:
        if variant.tag_suffix:
            if not tag.endswith(variant.tag_suffix):
                continue
            tag = tag[: -len(variant.tag_suffix)]
        try:
            version = semver.Version.parse(tag)
        except ValueError:
            continue
        if not version.prerelease and not version.build:
            found.append(version)
    return sorted(found)


def release_tags(
    version: str, variant: Variant, published: Iterable[str] = (), *, maintenance: bool = False
) -> TagSet:
    """Tags for ``version`` of ``variant``, given the tags the registry already holds.

    A floating tag moves only when ``version`` is at least the variant's
    newest release it covers: 1.2.6 after 1.3.0 moves ``1.2`` but not ``1``
    or ``latest``. A ``maintenance`` release moves only its own ``X.Y`` tag.
    """
    v = parse_version(version)
    suffix = variant.tag_suffix
    exact = (f"{v}{suffix}",)
    if v.prerelease:
        return TagSet(exact)
    before = releases(published, variant)

    def newest(matching: list[semver.Version]) -> bool:
        return not matching or v >= max(matching)

    floating = []
    if newest([p for p in before if (p.major, p.minor) == (v.major, v.minor)]):
        floating.append(f"{v.major}.{v.minor}{suffix}")
    if maintenance:
        return TagSet(exact, tuple(floating))
    if v.major and newest([p for p in before if p.major == v.major]):
        floating.append(f"{v.major}{suffix}")
    if newest(before):
        floating.append(floating_name(variant))
    return TagSet(exact, tuple(floating))


# Hex digits of a commit in its sha- tag: seven collide within a busy repository's
# history; twelve (48 bits) do not in practice.
SHA_TAG_LENGTH = 12


def edge_tags(revision: str, variant: Variant) -> TagSet:
    """Main-branch builds: ``sha-<12 hex>`` is immutable, ``edge`` floats; never ``latest``."""
    if len(revision) < SHA_TAG_LENGTH or any(c not in "0123456789abcdef" for c in revision.lower()):
        raise SandboxError(
            f"{revision!r} is not a git commit of at least {SHA_TAG_LENGTH} hex digits",
            "pass the full SHA (github.sha, git rev-parse HEAD)",
        )
    suffix = variant.tag_suffix
    return TagSet((f"sha-{revision[:SHA_TAG_LENGTH].lower()}{suffix}",), (f"edge{suffix}",))


def tags_for(
    version: str,
    variant: Variant,
    published: Iterable[str] = (),
    *,
    edge: str = "",
    maintenance: bool = False,
) -> TagSet:
    """A main-branch build's tags when ``edge`` names its commit, else the release's."""
    if edge:
        return edge_tags(edge, variant)
    return release_tags(version, variant, published, maintenance=maintenance)


def check_newer(
    version: str, published: Iterable[str], variant: Variant, *, maintenance: bool = False
) -> None:
    """A release must be newer than every published one of its variant; a rerun is allowed.

    ``maintenance`` admits a patch on an older line (1.2.6 after 1.3.0), which
    must still be the newest of its own X.Y line.
    """
    v = parse_version(version)
    done = releases(map(str, published), variant)
    if not done or v in done:
        return
    line = [p for p in done if (p.major, p.minor) == (v.major, v.minor)]
    if maintenance and (not line or v > max(line)):
        return
    if v < max(done):
        raise SandboxError(
            f"version {v} is lower than {variant.name}'s latest release {max(done)}",
            "bump the version (invoke release --bump patch), or pass --maintenance for a "
            "patch on an older X.Y line",
        )
