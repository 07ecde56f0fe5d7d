"""``invoke build``: read the engine's state once, plan (``plan``), then run the plan
(``runner``); CI's digest files."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from conjure_sandbox import inputs, prerequisites, uptodate
from conjure_sandbox.basechoice import choose_base
from conjure_sandbox.cabundle import resolve_ca_bundle
from conjure_sandbox.cache import parse_cache
from conjure_sandbox.catalogue import job_slug, load_catalogue
from conjure_sandbox.compression import Compression, check_engine, parse_compression
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.engine import LocalImage, local_images, remote_exists
from conjure_sandbox.engine import reason as engine_reason
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan, BuildSources, BuildTarget, plan_build, target_tags
from conjure_sandbox.provenance import input_paths, read_provenance
from conjure_sandbox.request import JOBS_FIX, BuildRequest, Export, Load
from conjure_sandbox.runner import BuildResult, Log, run_plan
from conjure_sandbox.sbom import ensure_generator, generator_ref
from conjure_sandbox.tags import parse_version
from conjure_sandbox.version import package_version

if TYPE_CHECKING:
    from python_on_whales import DockerClient


def build_images(
    request: BuildRequest,
    *,
    settings: Settings,
    dry_run: bool = False,
    client: DockerClient | None = None,
    log: Log = print,
) -> tuple[BuildPlan, list[BuildResult]]:
    """Read the engine's state once, plan, and build unless ``dry_run`` or nothing changed.

    Every loaded or pushed image gets an SBOM attestation (``request.sbom``) from
    the generator image (see ``sbom``), built first when the engine lacks it. Every
    layer is compressed as ``settings.compression`` says; loading zstd layers into
    an engine too old to unpack them is refused before anything is built.

    A failing variant does not stop the others: failures come back as results.
    """
    request.check()
    variants, tag, builder = request.variants, request.tag, request.builder
    context, jobs, progress = request.context, request.jobs, request.progress
    export_dir = request.output.directory if isinstance(request.output, Export) else None
    catalogue = load_catalogue(context or docker_dir())
    selected = catalogue.select(variants)
    prerequisites.check_dockerfiles((v.dockerfile for v in selected), catalogue.docker_dir)
    version = (
        str(parse_version(request.version)) if request.version is not None else package_version()
    )
    provenances = {
        v.name: read_provenance(version, catalogue.docker_dir, input_paths(catalogue, v))
        for v in selected
    }
    ca_bundle = resolve_ca_bundle(settings.ca_bundle)
    store = parse_cache(settings.cache if request.cache_store is None else request.cache_store)
    compression = parse_compression(settings.compression)
    host_only = request.output is None or isinstance(request.output, Load)
    wanted = request.platforms or ((host_platform(),) if host_only else ())
    prerequisites.check_platform_names(wanted)
    tags = [t for v in selected for t in target_tags(v, settings.image, version, tag)]
    # One cheap query answers both "which base?" and "is anything out of date?".
    known = local_images([request.base or settings.base_image, settings.local_base, *tags])
    engine = _Engine(client)
    if known is None:
        prerequisites.probe(engine(), builder)  # raises the engine's own one-line error
    base_ref, known = _base(request, settings, known, engine, dry_run, log)
    base_image = known.get(base_ref) if known else None
    plan = plan_build(
        catalogue,
        replace(request, platforms=wanted),
        BuildSources(
            image=settings.image,
            provenance=provenances,
            base=base_ref,
            base_id=base_image.id if base_image else "",
            base_created=base_image.created if base_image else 0,
            context_files=inputs.context_files(catalogue.docker_dir),
            ca_bundle=ca_bundle,
            sbom=generator_ref(catalogue.docker_dir) if request.sbom else "",
            cache_store=store,
            compression=compression,
        ),
    )
    if not (base_image and base_image.created):
        plan = _without_base_time(plan, base_ref, base_ref == settings.local_base, dry_run)
    current = {
        t.variant.name: known[t.tags[0]].id
        for t in plan.targets
        if known and not dry_run and uptodate.is_current(t, known)
    }
    stale = replace(plan, targets=tuple(t for t in plan.targets if t.variant.name not in current))
    if stale.targets or builder:  # a named builder is checked even when nothing is stale
        facts = prerequisites.probe(engine(), builder)
        plan, stale = _fit_to_builder(plan, stale, facts, compression, log)
    # Each build's metadata file, and each pushed image's layout (see _via_layouts).
    scratch = "" if dry_run else tempfile.mkdtemp(prefix="conjure-build-")
    directory = str(export_dir) if export_dir else scratch or "<scratch>"
    plan, stale = (
        _with_metadata(_via_layouts(p, directory, bool(export_dir)), scratch or "<scratch>")
        for p in (plan, stale)
    )
    built: dict[str, BuildResult] = {}
    try:
        if dry_run:
            return plan, []
        if stale.targets:
            runner = _default_client(stale.context) if stale.context else engine()
            if any(t.sbom for t in stale.targets):
                ensure_generator(
                    runner, catalogue.docker_dir, base=base_ref, ca_bundle=ca_bundle, log=log
                )
            built = {r.variant: r for r in run_plan(stale, runner, log, jobs, progress)}
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return plan, [
        built.get(t.variant.name) or _up_to_date(t, current[t.variant.name]) for t in plan.targets
    ]


def _up_to_date(target: BuildTarget, image_id: str) -> BuildResult:
    return BuildResult(target.variant.name, target.platforms, 0.0, digest=image_id, up_to_date=True)


def _without_base_time(plan: BuildPlan, base_ref: str, local: bool, dry_run: bool) -> BuildPlan:
    """A base the engine gave no creation time: refused for a build (every written file takes
    that time), noted in a dry run (a base not pulled yet)."""
    if not dry_run:
        remake = (
            "rebuild it with `invoke base`"
            if local
            else f"pull it again with `docker pull {base_ref}`"
        )
        raise SandboxError(
            f"the engine gave no creation time for base {base_ref}",
            f"check `docker image inspect {base_ref}`; {remake}",
        )
    note = f"{base_ref} is not pulled yet: a build passes its creation time as BASE_EPOCH"
    return replace(plan, notes=(*plan.notes, note))


class _Engine:
    """The docker client, made on first use: an up-to-date build never imports
    python-on-whales."""

    def __init__(self, client: DockerClient | None) -> None:
        self._client = client

    def __call__(self) -> DockerClient:
        if self._client is None:
            self._client = _default_client()
        return self._client


def _base(
    request: BuildRequest,
    settings: Settings,
    known: dict[str, LocalImage] | None,
    engine: _Engine,
    dry_run: bool,
    log: Log,
) -> tuple[str, dict[str, LocalImage] | None]:
    """The base a build uses (see ``basechoice``), pulled now if the engine lacks it: its
    creation time is every written file's. Returns it and what the engine holds then."""
    base_ref = choose_base(
        wanted=request.base or settings.base_image,
        local_base=settings.local_base,
        explicit=request.base is not None or settings.base != "upstream",
        publishing=request.publishing,
        is_present=lambda ref: (
            ref in known if known is not None else prerequisites.image_present(engine(), ref)
        ),
        is_pullable=remote_exists,
        warn=log,
    )
    if known is None or base_ref in known or dry_run:
        return base_ref, known
    from python_on_whales.exceptions import DockerException

    log(f"pulling base {base_ref}")
    try:
        engine().image.pull(base_ref, quiet=True)
    except DockerException as error:
        raise SandboxError(
            f"pulling base {base_ref} failed: {engine_reason(error)}",
            "check registry access, or set CONJURE_BASE=local (after `invoke base`)",
        ) from None
    return base_ref, {**known, **(local_images([base_ref]) or {})}


def _fit_to_builder(
    plan: BuildPlan,
    stale: BuildPlan,
    facts: prerequisites.EngineFacts,
    compression: Compression,
    log: Log,
) -> tuple[BuildPlan, BuildPlan]:
    """Check what the builder offers against what the stale targets need; a docker-driver
    builder runs through its context, and a builder that cannot run the SBOM generator
    builds without SBOMs, saying so."""
    prerequisites.check_platforms(facts, {p for t in stale.targets for p in t.platforms})
    for target in stale.targets:
        prerequisites.check_load(facts, target.platforms, target.load)
    if any(t.load for t in stale.targets):
        check_engine(facts.server_version, compression, "a load would give it")
    if plan.builder and facts.driver == "docker":
        plan = replace(plan, builder=None, context=plan.builder)
        stale = replace(stale, builder=None, context=stale.builder)
    if facts.driver != "docker" and any(t.sbom for t in stale.targets):
        log(
            f"note: no SBOM attestations: a {facts.driver}-driver builder cannot run the "
            "generator image the engine holds (use a docker-driver builder for SBOMs)"
        )
        plan, stale = (_without_sbom(p) for p in (plan, stale))
    if facts.driver == "docker" and not facts.containerd_store:
        plan, stale = (_for_classic_store(p) for p in (plan, stale))
    return plan, stale


def _for_classic_store(plan: BuildPlan) -> BuildPlan:
    """The docker driver on the classic image store exports no build cache and keeps no
    attestations: build without either, saying so in the plan's notes (shown under the
    summary)."""
    exports = any(t.cache_to for t in plan.targets)
    sbom = any(t.sbom for t in plan.targets)
    if not (exports or sbom):
        return plan
    lost = " and ".join(
        what for what, lacking in (("a build cache export", exports), ("SBOMs", sbom)) if lacking
    )
    note = (
        f"the engine's classic image store: built without {lost} (the docker driver offers "
        "them only with the containerd image store); build steps stay in the engine's own "
        "build cache"
    )
    targets = tuple(replace(t, cache_to=(), sbom="") for t in plan.targets)
    return replace(plan, targets=targets, notes=(*plan.notes, note))


def _without_sbom(plan: BuildPlan) -> BuildPlan:
    return replace(plan, targets=tuple(replace(t, sbom="") for t in plan.targets))


def _via_layouts(plan: BuildPlan, directory: str, export: bool = False) -> BuildPlan:
    """Every image that is pushed goes through an OCI layout, which we then upload (the
    docker driver cannot push by digest). ``export``: every image stays a layout in
    ``directory``. A loaded image goes straight into the engine's store: the image
    exporter gives it the digest the layout would have, without writing and reading
    a tarball of it."""
    targets = tuple(
        replace(t, layout=str(Path(directory) / f"{t.variant.name}.tar"))
        if export or t.push or t.by_digest
        else t
        for t in plan.targets
    )
    if targets == plan.targets:
        return plan
    note = "each pushed or exported image is written as an OCI layout, then uploaded or kept"
    return replace(plan, targets=targets, notes=(*plan.notes, note))


def _with_metadata(plan: BuildPlan, directory: str) -> BuildPlan:
    """Where buildx writes each build's metadata (the digest it made, the builder it ran on)."""
    targets = tuple(
        replace(t, metadata=str(Path(directory) / f"{t.variant.name}.metadata.json"))
        for t in plan.targets
    )
    return replace(plan, targets=targets)


def _default_client(context: str | None = None) -> DockerClient:
    from python_on_whales import DockerClient, docker

    return DockerClient(context=context) if context else docker


def host_platform() -> str:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"linux/{arch}"


def parse_jobs(text: str) -> int:
    """``--jobs`` as given on the command line: a whole number, 0 meaning all at once."""
    try:
        return int(text)
    except ValueError:
        raise SandboxError(f"--jobs {text!r} is not a number", JOBS_FIX) from None


def write_digests(plan: BuildPlan, results: list[BuildResult], directory: Path) -> list[Path]:
    """Per variant pushed by digest, a file ``<variant>-<platforms>`` holding ``repo@digest``."""
    return [
        write_digest(directory, target.variant.name, target.platforms, target.by_digest, digest)
        for target, digest in zip(plan.targets, (r.digest for r in results), strict=True)
        if target.by_digest and digest
    ]


def write_digest(
    directory: Path, variant: str, platforms: tuple[str, ...], repository: str, digest: str
) -> Path:
    """The file the image tests and the merge read: ``repo@digest`` under the job's slug."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / job_slug(variant, platforms)
    path.write_text(f"{repository}@{digest}\n")
    return path
