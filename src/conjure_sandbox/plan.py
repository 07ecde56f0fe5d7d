"""The build plan: catalogue x version x platforms x options -> what buildx will run.

Pure: nothing here talks to an engine, so ``--dry-run`` and the unit tests see
exactly what a real build does.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from conjure_sandbox.cabundle import secret_spec
from conjure_sandbox.catalogue import Catalogue, Variant
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.tags import version_tag

SOURCE_URL = "https://github.com/holsee/conjure-sandbox"
LICENSE = "MIT"


@dataclass(frozen=True)
class Provenance:
    """Where an image comes from: version, git revision, creation time (RFC 3339)."""

    version: str
    revision: str
    created: str


@dataclass(frozen=True)
class BuildTarget:
    """One variant's buildx invocation."""

    variant: Variant
    context: Path
    platforms: tuple[str, ...]
    tags: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    secrets: tuple[str, ...] = ()
    load: bool = False
    push: bool = False
    cache: bool = True

    def buildx_argv(self, builder: str | None = None) -> list[str]:
        """The equivalent ``docker buildx build`` command line."""
        argv = ["docker", "buildx", "build"]
        if builder:
            argv += ["--builder", builder]
        argv += ["--file", str(self.variant.dockerfile), "--platform", ",".join(self.platforms)]
        for tag in self.tags:
            argv += ["--tag", tag]
        for key, value in self.build_args:
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in self.labels:
            argv += ["--label", f"{key}={value}"]
        for secret in self.secrets:
            argv += ["--secret", secret]
        if not self.cache:
            argv.append("--no-cache")
        if self.load:
            argv.append("--load")
        if self.push:
            argv.append("--push")
        return [*argv, str(self.context)]


@dataclass(frozen=True)
class BuildPlan:
    targets: tuple[BuildTarget, ...]
    builder: str | None = None
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> list[str]:
        lines = list(self.notes)
        for target in self.targets:
            lines.append(f"{target.variant.name}: {', '.join(target.platforms)}")
            lines.extend(f"  tag {tag}" for tag in target.tags)
            lines.append("  $ " + shlex.join(target.buildx_argv(self.builder)))
        return lines


def labels_for(variant: Variant, provenance: Provenance, base: str) -> tuple[tuple[str, str], ...]:
    """The OCI annotations every image carries."""
    title = "conjure-sandbox" if variant.default else f"conjure-sandbox-{variant.name}"
    prefix = "org.opencontainers.image."
    return (
        (prefix + "title", title),
        (prefix + "description", variant.description),
        (prefix + "source", SOURCE_URL),
        (prefix + "version", provenance.version),
        (prefix + "revision", provenance.revision),
        (prefix + "created", provenance.created),
        (prefix + "licenses", LICENSE),
        (prefix + "base.name", base),
    )


def plan_build(
    catalogue: Catalogue,
    *,
    image: str,
    provenance: Provenance,
    base: str,
    variants: tuple[str, ...] = (),
    platforms: tuple[str, ...] = (),
    load: bool | None = None,
    push: bool = False,
    tag: str | None = None,
    ca_bundle: Path | None = None,
    cache: bool = True,
    builder: str | None = None,
) -> BuildPlan:
    """Settle every variant's platforms, tags, arguments and outputs.

    ``platforms`` empty means each variant's catalogue platforms; ``load``
    defaults to true for a single platform when not pushing.
    """
    if load and push:
        raise SandboxError("--load and --push exclude each other", "pick one")
    targets = []
    for variant in catalogue.select(variants):
        wanted = platforms or variant.platforms
        loading = (len(wanted) == 1 and not push) if load is None else load
        tags = (
            (f"{tag}{variant.tag_suffix}",)
            if tag
            else (version_tag(image, provenance.version, variant),)
        )
        targets.append(
            BuildTarget(
                variant=variant,
                context=catalogue.docker_dir,
                platforms=tuple(wanted),
                tags=tags,
                build_args=(("BASE", base),),
                labels=labels_for(variant, provenance, base),
                secrets=(secret_spec(ca_bundle),) if ca_bundle else (),
                load=loading,
                push=push,
                cache=cache,
            )
        )
    return BuildPlan(targets=tuple(targets), builder=builder)
