"""Run a build plan through python-on-whales, one buildx call per variant."""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from conjure_sandbox import inputs, prerequisites, uptodate
from conjure_sandbox.base import choose_base, remote_exists
from conjure_sandbox.cabundle import resolve_ca_bundle
from conjure_sandbox.cache import parse_cache
from conjure_sandbox.catalogue import job_slug, load_catalogue
from conjure_sandbox.compression import check_engine, parse_compression
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.engine import local_images
from conjure_sandbox.engine import reason as engine_reason
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan, BuildSources, BuildTarget, plan_build, target_tags
from conjure_sandbox.provenance import input_paths, read_provenance
from conjure_sandbox.registry import (
    SERVER_ERROR,
    credentials_from_env,
    parse_repository,
    push_layout,
)
from conjure_sandbox.request import JOBS_FIX, BuildRequest, Export, Load
from conjure_sandbox.retry import CUT_OFF_BUILD
from conjure_sandbox.sbom import ensure_generator, generator_ref
from conjure_sandbox.tags import parse_version, split_tag
from conjure_sandbox.version import package_version

if TYPE_CHECKING:
    from python_on_whales import DockerClient

Log = Callable[[str], None]
FAILURE_TAIL = 15
# What a build that BuildKit cut off, rather than a failing step, ends with: seen
# when buildx's session to the engine dropped while exporting layers under
# heavy QEMU load (twice in a row for one variant while three others built for
# arm64; the cache export, where it struck, no longer fails a build). A
# registry's 5xx while pushing counts too (Debian's registry answers 500 to a
# read that meets a write of the same tag). Such a build is run again as
# retry.CUT_OFF_BUILD says.
TRANSIENT_ERRORS = (
    "context canceled",
    "the client connection is closing",
    "connection reset by peer",
)


def is_transient(reason: str) -> bool:
    """Whether a failed build's log tail says BuildKit was cut off or a registry answered
    5xx, not that a step failed."""
    if "did not complete successfully" in reason:  # a RUN step's own exit status
        return False
    return any(marker in reason for marker in TRANSIENT_ERRORS) or bool(SERVER_ERROR.search(reason))


# In buildx's plain progress, Dockerfile steps are the vertices named like
# "#7 [stage-0 3/7] RUN ..." or "#9 [linux/arm64 python-env 2/3] RUN ...".
# FROM is left out: resolving a base reports DONE or CACHED by where it was found.
_STEP = re.compile(r"^#(\d+) \[[^\]]*\d+/\d+\] (?!FROM )")
_CACHED = re.compile(r"^#(\d+) CACHED$")
_CACHE_EXPORT = re.compile(r"^#(\d+) exporting cache\b")
_VERTEX_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")


@dataclass(frozen=True)
class BuildResult:
    variant: str
    platforms: tuple[str, ...]
    seconds: float
    error: str | None = None
    digest: str | None = None
    cached_steps: int = 0
    total_steps: int = 0
    up_to_date: bool = False
    # Compressed bytes per platform, known for pushed images.
    sizes: tuple[tuple[str, int], ...] = ()
    # Why the build cache was not exported, when the image was built all the same.
    cache_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def cache_export_failure(lines: list[str]) -> str | None:
    """Why exporting the build cache failed, from a plain-progress log, if it did.

    The cache is exported with ``ignore-error=true``, so such a build still succeeds.
    """
    exports = {m.group(1) for m in map(_CACHE_EXPORT.match, lines) if m}
    errors = [m.group(2) for m in map(_VERTEX_ERROR.match, lines) if m and m.group(1) in exports]
    return errors[-1] if errors else None


def count_steps(lines: list[str]) -> tuple[int, int]:
    """(cached, total) Dockerfile steps in a plain-progress build log."""
    steps = {m.group(1) for m in map(_STEP.match, lines) if m}
    cached = {m.group(1) for m in map(_CACHED.match, lines) if m}
    return len(steps & cached), len(steps)


Stream = Callable[[list[str]], Iterable[tuple[str, bytes]]]


def run_target(
    client: DockerClient,
    target: BuildTarget,
    builder: str | None,
    log: Log,
    progress: str = "plain",
    context: str | None = None,
    stream: Stream | None = None,
) -> BuildResult:
    """Build one variant, streaming its log prefixed with its name (``quiet``: start and end only).

    Runs exactly ``target.buildx_argv(builder, context)``, the command ``--dry-run``
    prints, through python-on-whales' runner (``stream``). A failure keeps the log's
    last lines: the exception alone carries no reason.
    """
    from python_on_whales.exceptions import DockerException
    from python_on_whales.utils import stream_stdout_and_stderr

    name = target.variant.name
    seen: list[str] = []
    started = time.monotonic()
    if progress == "quiet":
        log(f"[{name}] building {', '.join(target.platforms)}")
    metadata = Path(target.metadata) if target.metadata else None
    try:
        for _source, raw in (stream or stream_stdout_and_stderr)(
            target.buildx_argv(builder, context)
        ):
            line = raw.decode(errors="replace").rstrip("\n")
            seen.append(line)
            if progress != "quiet":
                log(f"[{name}] {line}")
    except DockerException as error:
        reason = "\n".join(seen[-FAILURE_TAIL:]) or str(error)
        if progress == "quiet":
            log(f"[{name}] FAILED after {time.monotonic() - started:.1f}s")
        return BuildResult(name, target.platforms, time.monotonic() - started, reason)
    finally:
        written = metadata.read_text() if metadata and metadata.exists() else ""
        if metadata:
            metadata.unlink(missing_ok=True)
    cached, total = count_steps(seen)
    cache_error = cache_export_failure(seen)
    if cache_error:
        log(f"[{name}] warning: the image is built but its cache was not exported: {cache_error}")
    metadata_fields = json.loads(written) if written.strip() else {}
    digest = metadata_fields.get("containerimage.digest")
    if target.layout:
        try:
            digest = deliver_layout(target, log)
        except SandboxError as error:
            return BuildResult(name, target.platforms, time.monotonic() - started, str(error))
        finally:
            if target.push or target.by_digest:
                Path(target.layout).unlink(missing_ok=True)
    # "builder/node/build-id": says which builder really ran it.
    node = "/".join(str(metadata_fields.get("buildx.build.ref", "?")).split("/")[:2])
    log(f"[{name}] built on {node}")
    repository = target.by_digest or (target.tags[0] if target.tags else "")
    pushed = (target.push or target.by_digest) and digest
    sizes = compressed_sizes(client, f"{repository}@{digest}") if pushed else ()
    if progress == "quiet":
        log(f"[{name}] done in {time.monotonic() - started:.1f}s")
    return BuildResult(
        name,
        target.platforms,
        time.monotonic() - started,
        digest=digest,
        cached_steps=cached,
        total_steps=total,
        sizes=sizes,
        cache_error=cache_error,
    )


def deliver_layout(target: BuildTarget, log: Log) -> str:
    """Upload the exported layout, if the image is pushed; return the image's digest."""
    name, layout = target.variant.name, Path(target.layout)
    if not (target.push or target.by_digest):
        return layout_root(layout)
    credentials = credentials_from_env()
    if target.by_digest:
        digest = push_layout(layout, parse_repository(target.by_digest), credentials)
        log(f"[{name}] uploaded by digest: {target.by_digest}@{digest}")
        return digest
    digest = ""
    for ref in target.tags:
        repository, tag = split_tag(ref)
        digest = push_layout(layout, parse_repository(repository), credentials, tag=tag)
        log(f"[{name}] pushed {ref}@{digest}")
    return digest


def layout_root(layout: Path) -> str:
    """The digest of the image or index an OCI layout tarball holds."""
    with tarfile.open(layout) as archive:
        index = archive.extractfile("index.json")
        if index is None:
            raise SandboxError(f"{layout} is not an OCI layout", "build it again")
        (root,) = json.load(index)["manifests"]
    return str(root["digest"])


def compressed_sizes(client: DockerClient, ref: str) -> tuple[tuple[str, int], ...]:
    """Each platform's compressed size (config and layers) as the registry holds it."""
    from python_on_whales.exceptions import DockerException

    name = ref.split("@", 1)[0]
    sizes = []
    try:
        index = client.buildx.imagetools.inspect(ref)
        for entry in index.manifests or ():
            platform = entry.platform
            if not platform or platform.os == "unknown":  # an attestation manifest
                continue
            manifest = client.buildx.imagetools.inspect(f"{name}@{entry.digest}")
            layers = sum(layer.size or 0 for layer in manifest.layers or ())
            config = manifest.config.size or 0 if manifest.config else 0
            sizes.append((f"{platform.os}/{platform.architecture}", layers + config))
    except DockerException:
        return ()
    return tuple(sizes)


def run_plan(
    plan: BuildPlan, client: DockerClient, log: Log, jobs: int = 0, progress: str = "plain"
) -> list[BuildResult]:
    """Build every target, ``jobs`` at a time (0: all at once), results in plan order.

    Concurrent builds on one BuildKit share the steps they have in common. A build
    cut off by BuildKit runs again once the others have finished, alone, so the load
    that cut it off has passed.
    """
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            log(line)

    def build(target: BuildTarget) -> BuildResult:
        return run_target(client, target, plan.builder, locked, progress, plan.context)

    workers = jobs or len(plan.targets) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(build, plan.targets))
    for index, target in enumerate(plan.targets):
        for _ in range(CUT_OFF_BUILD.retries):
            result = results[index]
            reason = (result.error or "").strip()
            if result.ok or not is_transient(reason):
                break
            last = engine_reason(reason)
            log(f"[{target.variant.name}] transient failure, not a step's ({last}); building again")
            again = build(target)
            results[index] = replace(again, seconds=again.seconds + result.seconds)
    return results


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
    variants, tag, base, builder = request.variants, request.tag, request.base, request.builder
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
    wanted_base = base or settings.base_image
    tags = [t for v in selected for t in target_tags(v, settings.image, version, tag)]
    # One cheap query answers both "which base?" and "is anything out of date?".
    known = local_images([wanted_base, settings.local_base, *tags])
    engine_client: list[DockerClient] = [client] if client else []

    def engine() -> DockerClient:
        if not engine_client:
            engine_client.append(_default_client())
        return engine_client[0]

    if known is None:
        prerequisites.probe(engine(), builder)  # raises the engine's own one-line error
    base_ref = choose_base(
        wanted=wanted_base,
        local_base=settings.local_base,
        explicit=base is not None or settings.base != "upstream",
        publishing=request.publishing,
        is_present=lambda ref: (
            ref in known if known is not None else prerequisites.image_present(engine(), ref)
        ),
        is_pullable=remote_exists,
        warn=log,
    )
    if known is not None and base_ref not in known and not dry_run:
        # Pulled now rather than by BuildKit: its creation time is every written file's.
        from python_on_whales.exceptions import DockerException

        log(f"pulling base {base_ref}")
        try:
            engine().image.pull(base_ref, quiet=True)
        except DockerException as error:
            raise SandboxError(
                f"pulling base {base_ref} failed: {engine_reason(error)}",
                "check registry access, or set CONJURE_BASE=local (after `invoke base`)",
            ) from None
        known = {**known, **(local_images([base_ref]) or {})}
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
        if not dry_run:
            remake = (
                "rebuild it with `invoke base`"
                if base_ref == settings.local_base
                else f"pull it again with `docker pull {base_ref}`"
            )
            raise SandboxError(
                f"the engine gave no creation time for base {base_ref}",
                f"check `docker image inspect {base_ref}`; {remake}",
            )
        plan = replace(
            plan,
            notes=(
                *plan.notes,
                f"{base_ref} is not pulled yet: a build passes its creation time as BASE_EPOCH",
            ),
        )
    current = {
        t.variant.name: known[t.tags[0]].id
        for t in plan.targets
        if known and not dry_run and uptodate.is_current(t, known)
    }
    stale = replace(plan, targets=tuple(t for t in plan.targets if t.variant.name not in current))
    if stale.targets or builder:  # a named builder is checked even when nothing is stale
        facts = prerequisites.probe(engine(), builder)
        prerequisites.check_platforms(facts, {p for t in stale.targets for p in t.platforms})
        for target in stale.targets:
            prerequisites.check_load(facts, target.platforms, target.load)
        if any(t.load for t in stale.targets):
            check_engine(facts.server_version, compression, "a load would give it")
        if builder and facts.driver == "docker":
            plan = replace(plan, builder=None, context=builder)
            stale = replace(stale, builder=None, context=builder)
        if facts.driver != "docker" and any(t.sbom for t in stale.targets):
            log(
                f"note: no SBOM attestations: a {facts.driver}-driver builder cannot run the "
                "generator image the engine holds (use a docker-driver builder for SBOMs)"
            )
            plan, stale = (_without_sbom(p) for p in (plan, stale))
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
        built.get(t.variant.name)
        or BuildResult(
            t.variant.name, t.platforms, 0.0, digest=current[t.variant.name], up_to_date=True
        )
        for t in plan.targets
    ]


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


def summary(results: list[BuildResult]) -> list[str]:
    """A table of results, then each failure's log tail."""
    lines = [
        f"{'variant':<10} {'platforms':<24} {'digest':<19} {'MB':>13} {'seconds':>8} "
        f"{'cached':>7}  result"
    ]
    for r in results:
        digest = r.digest[:19] if r.digest else "-"
        # Compressed sizes are known once pushed; a loaded image's are not.
        size = "/".join(f"{n / 1e6:.1f}" for _, n in r.sizes) or "-"
        cached = "-" if r.up_to_date else f"{r.cached_steps}/{r.total_steps}"
        result = "up to date" if r.up_to_date else "ok" if r.ok else "FAILED"
        if r.ok and r.cache_error:
            result += ", cache not exported"
        lines.append(
            f"{r.variant:<10} {','.join(r.platforms):<24} {digest:<19} {size:>13} "
            f"{r.seconds:>8.1f} {cached:>7}  {result}"
        )
    for r in results:
        if not r.ok:
            lines.append(f"--- {r.variant} failed; last lines of its log:")
            lines.extend(f"    {line}" for line in (r.error or "").splitlines())
    return lines


def parse_jobs(text: str) -> int:
    """``--jobs`` as given on the command line: a whole number, 0 meaning all at once."""
    try:
        return int(text)
    except ValueError:
        raise SandboxError(f"--jobs {text!r} is not a number", JOBS_FIX) from None


def raise_if_failed(results: list[BuildResult]) -> None:
    failed = [r.variant for r in results if not r.ok]
    if failed:
        raise SandboxError(f"build failed for {', '.join(failed)}", "see the log tail above")


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
