"""The build plan: catalogue x version x platforms x options -> what buildx will run.

Pure: nothing here talks to an engine, so ``--dry-run`` and the unit tests see
exactly what a real build does.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from conjure_sandbox.cabundle import secret_spec
from conjure_sandbox.cache import NO_CACHE_STORE, CacheStore
from conjure_sandbox.catalogue import Catalogue, Variant
from conjure_sandbox.compression import DEFAULT, Compression
from conjure_sandbox.dockerfiles import is_layer_file
from conjure_sandbox.inputs import INPUTS_LABEL, inputs_digest
from conjure_sandbox.provenance import Provenance
from conjure_sandbox.request import (
    BuildRequest,
    CacheOnly,
    Export,
    Load,
    Output,
    Push,
    PushByDigest,
)
from conjure_sandbox.tags import prefixed_tag, version_tag

SOURCE_URL = "https://github.com/holsee/conjure-sandbox"
VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
CREATED_LABEL = "org.opencontainers.image.created"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
# The build argument carrying the base's creation time into every stage: docker/scrub
# lowers each newer file time to it, so a step's files get the same times whenever
# it ran, and a step from the cache matches one run today.
BASE_EPOCH_ARG = "BASE_EPOCH"
LICENSE = "MIT"


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
    # Where the image goes: one kind, never a contradiction (see request.py).
    delivery: Output = field(default_factory=CacheOnly)
    cache: bool = True
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    # Attached to pushed images only: its build times would make a loaded image's
    # index differ from build to build.
    provenance: str = ""
    # The SBOM generator image (see sbom.py), or empty for no SBOM attestation.
    sbom: str = ""
    # The OCI layout (a tarball) a pushed or exported image is written to;
    # conjure-sandbox then uploads it (the docker driver cannot push by digest).
    layout: str = ""
    # Where buildx writes what it built (the image's digest, the builder that ran it).
    metadata: str = ""
    # Of every layer the image (and the cache export) is given.
    compression: Compression = DEFAULT

    @property
    def load(self) -> bool:
        return isinstance(self.delivery, Load)

    @property
    def push(self) -> bool:
        """Pushed under its tags (a push by digest is ``by_digest``)."""
        return isinstance(self.delivery, Push)

    @property
    def by_digest(self) -> str:
        """The repository an untagged push by digest goes to, else empty."""
        return self.delivery.repository if isinstance(self.delivery, PushByDigest) else ""

    @property
    def output(self) -> str:
        """The ``--output``: the OCI layout an image is exported to, else the engine's
        store (a load) or the registry (a plain push); empty for a build that only fills
        the cache. Each carries the layers' compression."""
        options = self.compression.exporter_options
        if self.layout:
            # The name is the SBOM's subject, and what the engine tags on loading.
            name = f",name={self.tags[0]}" if self.tags else ""
            return f"type=oci,dest={self.layout}{name},{options}"
        # OCI media types, as a layout has: a loaded image then has the digest its export
        # has, with or without attestations (which force them anyway).
        if self.load:
            return f"type=docker,oci-mediatypes=true,{options}"
        if self.push:
            return f"type=registry,oci-mediatypes=true,{options}"
        return ""

    @property
    def inputs(self) -> str:
        """The digest of what this image is built from (see ``uptodate``)."""
        return dict(self.labels).get(INPUTS_LABEL, "")

    def recipe(self) -> list[str]:
        """What decides the image's content, and nothing about where it is built, stored or
        sent (paths, tags, caches, outputs, platforms): so the same sources give the same
        inputs label, and so the same image, on any machine and in CI's per-platform jobs."""
        return [
            self.variant.dockerfile.name,
            *(f"--build-arg={key}={value}" for key, value in self.build_args),
            *(f"--label={key}={value}" for key, value in self.labels if key != INPUTS_LABEL),
            f"--sbom={self.sbom}",
            # The layers' digests, though not their content: an image loaded in one
            # compression is not the one asked for in the other.
            f"--compression={self.compression}",
        ]

    def buildx_argv(self, builder: str | None = None, context: str | None = None) -> list[str]:
        """The ``docker buildx build`` command line: what ``--dry-run`` prints and what
        ``build.run_target`` runs, the one rendering of a target."""
        argv = ["docker", *(("--context", context) if context else ()), "buildx", "build"]
        if builder:
            argv += ["--builder", builder]
        # BuildKit's status as data (progress.py reads it and renders the log).
        argv += ["--progress", "rawjson"]
        if self.metadata:
            argv += ["--metadata-file", self.metadata]
        argv += ["--file", str(self.variant.dockerfile), "--platform", ",".join(self.platforms)]
        for tag in self.tags:
            argv += ["--tag", tag]
        for key, value in self.build_args:
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in self.labels:
            argv += ["--label", f"{key}={value}"]
        for secret in self.secrets:
            argv += ["--secret", secret]
        for spec in self.cache_from:
            argv += ["--cache-from", spec]
        for spec in self.cache_to:
            argv += ["--cache-to", spec]
        # Off unless asked for: buildx would otherwise add one, with the build's times.
        argv += ["--provenance", self.provenance or "false"]
        if self.sbom:
            argv += ["--attest", f"type=sbom,generator={self.sbom}"]
        if self.output:
            argv += ["--output", self.output]
        if not self.cache:
            argv.append("--no-cache")
        return [*argv, str(self.context)]


@dataclass(frozen=True)
class BuildPlan:
    targets: tuple[BuildTarget, ...]
    builder: str | None = None
    # A docker-driver builder is a docker context: buildx runs there only via --context.
    context: str | None = None
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> list[str]:
        lines = list(self.notes)
        for target in self.targets:
            output = (
                "push by digest"
                if target.by_digest
                else "push"
                if target.push
                else "load"
                if target.load
                else "build cache only"
            )
            lines.append(f"{target.variant.name}: {', '.join(target.platforms)} ({output})")
            lines.extend(f"  tag        {tag}" for tag in target.tags)
            lines.extend(f"  build-arg  {key}={value}" for key, value in target.build_args)
            lines.extend(f"  cache-from {spec}" for spec in target.cache_from)
            lines.extend(f"  cache-to   {spec}" for spec in target.cache_to)
            lines.append("  $ " + shlex.join(target.buildx_argv(self.builder, self.context)))
        return lines

    def bake_definition(self) -> dict[str, object]:
        """The same plan as a ``docker buildx bake`` JSON file: the benchmark's reference."""
        targets: dict[str, object] = {}
        for t in self.targets:
            # Bake loads or pushes as a bake file usually does; only an export-only
            # target keeps its layout output.
            output = [replace(t, layout="").output if t.push or t.load else t.output]
            attest = [f"type=provenance,{t.provenance}"] if t.provenance else []
            if t.sbom:
                attest.append(f"type=sbom,generator={t.sbom}")
            targets[t.variant.name] = {
                "context": str(t.context),
                "dockerfile": str(t.variant.dockerfile),
                "platforms": list(t.platforms),
                "tags": list(t.tags),
                "args": dict(t.build_args),
                "labels": dict(t.labels),
                "secret": list(t.secrets),
                "cache-from": list(t.cache_from),
                "cache-to": list(t.cache_to),
                "attest": attest,
                "no-cache": not t.cache,
                "output": [spec for spec in output if spec],
            }
        return {"group": {"default": {"targets": list(targets)}}, "target": targets}


def labels_for(
    variant: Variant, provenance: Provenance, base: str, base_id: str = ""
) -> tuple[tuple[str, str], ...]:
    """The OCI annotations every image carries; the base's digest when it is known."""
    title = "conjure-sandbox" if variant.default else f"conjure-sandbox-{variant.name}"
    prefix = "org.opencontainers.image."
    return (
        (prefix + "title", title),
        (prefix + "description", variant.description),
        (prefix + "source", SOURCE_URL),
        (VERSION_LABEL, provenance.version),
        (REVISION_LABEL, provenance.revision),
        (CREATED_LABEL, provenance.created),
        (prefix + "licenses", LICENSE),
        (prefix + "base.name", base),
        *(((BASE_DIGEST_LABEL, base_id),) if base_id else ()),
    )


def target_tags(variant: Variant, image: str, version: str, tag: str | None) -> tuple[str, ...]:
    """``<image>:<version>[-variant]``, or the ``--tag`` prefix with the variant's suffix."""
    return (prefixed_tag(tag, variant),) if tag else (version_tag(image, version, variant),)


@dataclass(frozen=True)
class BuildSources:
    """What a plan is made from, read once before planning (see ``build.build_images``).

    ``provenance`` is one for every variant, or one per variant name (see
    ``provenance.input_paths``). ``context_files`` and ``base_id`` feed each
    image's inputs digest; another variant's Dockerfile is not an input, so
    editing one variant leaves the others up to date; nor is a shared layer file,
    whose text is in the Dockerfiles that use it. ``base_created`` is the base's
    creation time (0: unknown), the time docker/scrub gives every file a step
    writes. ``sbom`` names the SBOM generator image for every image that is
    loaded, pushed or exported. ``compression``: of every layer loaded, pushed,
    exported or cached.
    """

    image: str
    provenance: Provenance | Mapping[str, Provenance]
    base: str
    base_id: str = ""
    base_created: int = 0
    context_files: Mapping[str, str] | None = None
    ca_bundle: Path | None = None
    sbom: str = ""
    cache_store: CacheStore = NO_CACHE_STORE
    compression: Compression = DEFAULT


def plan_build(catalogue: Catalogue, request: BuildRequest, sources: BuildSources) -> BuildPlan:
    """Settle every variant's platforms, tags, arguments, caches and outputs.

    Pure: the request says what is wanted (see ``request.BuildRequest``), the
    sources what it is built from.
    """
    request.check()
    output = request.output
    push, by_digest = isinstance(output, Push), isinstance(output, PushByDigest)
    export = isinstance(output, Export)
    load = None if output is None else isinstance(output, Load)
    image, provenance, base = sources.image, sources.provenance, sources.base
    platforms, tag, cache = request.platforms, request.tag, request.cache
    dockerfiles = {v.dockerfile.name for v in catalogue}
    targets = []
    for variant in catalogue.select(request.variants):
        wanted = tuple(platforms or variant.platforms)
        own = provenance if isinstance(provenance, Provenance) else provenance[variant.name]
        loads = (len(wanted) == 1 and not (push or by_digest or export)) if load is None else load
        target = BuildTarget(
            variant=variant,
            context=catalogue.docker_dir,
            platforms=wanted,
            tags=() if by_digest else target_tags(variant, image, own.version, tag),
            build_args=(
                ("BASE", base),
                (BASE_EPOCH_ARG, str(sources.base_created)),
                # The config's and history's creation time. As a build argument, not
                # an exporter option: BuildKit then dates every step's history entry
                # with it, including a step from the cache made earlier. No stage
                # declares it, so it changes no step's cache key.
                ("SOURCE_DATE_EPOCH", str(own.epoch)),
            ),
            labels=labels_for(variant, own, base, sources.base_id),
            secrets=(secret_spec(sources.ca_bundle),) if sources.ca_bundle else (),
            delivery=(
                PushByDigest(image)
                if by_digest
                else output
                if isinstance(output, Push | Export)
                else Load()
                if loads
                else CacheOnly()
            ),
            cache=cache,
            cache_from=(
                sources.cache_store.imports(variant.name, wanted, variant.platforms)
                if cache
                else ()
            ),
            cache_to=sources.cache_store.exports(variant.name, wanted, sources.compression),
            provenance="mode=max" if push or by_digest else "",
            sbom=sources.sbom if loads or push or by_digest or export else "",
            compression=sources.compression,
        )
        own_files = {
            path: digest
            for path, digest in (sources.context_files or {}).items()
            if (path not in dockerfiles or path == variant.dockerfile.name)
            and not is_layer_file(path)
        }
        inputs = inputs_digest(own_files, target.recipe(), sources.base_id)
        targets.append(replace(target, labels=(*target.labels, (INPUTS_LABEL, inputs))))
    return BuildPlan(targets=tuple(targets), builder=request.builder)
