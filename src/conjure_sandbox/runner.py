"""Run a build plan through buildx, one call per variant, and report what came of it.

Each target's command is ``BuildTarget.buildx_argv``, the one ``--dry-run``
prints. A pushed image goes through its OCI layout, uploaded here; a build that
BuildKit cut off runs again as ``retry.CUT_OFF_BUILD`` says.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from conjure_sandbox.config import Settings
from conjure_sandbox.engine import reason as engine_reason
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.ocilayout import OciLayout
from conjure_sandbox.plan import BuildPlan, BuildTarget
from conjure_sandbox.progress import Progress
from conjure_sandbox.registry import (
    SERVER_ERROR,
    credentials_from_env,
    parse_repository,
    push_layout,
)
from conjure_sandbox.retry import CUT_OFF_BUILD
from conjure_sandbox.tags import split_tag

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
    seen: list[str] = []  # the log as shown: its tail is a failure's reason
    status = Progress()
    started = time.monotonic()

    def show(lines: list[str]) -> None:
        seen.extend(lines)
        if progress != "quiet":
            for line in lines:
                log(f"[{name}] {line}")

    if progress == "quiet":
        log(f"[{name}] building {', '.join(target.platforms)}")
    metadata = Path(target.metadata) if target.metadata else None
    try:
        for _source, raw in (stream or stream_stdout_and_stderr)(
            target.buildx_argv(builder, context)
        ):
            show(status.feed(raw.decode(errors="replace").rstrip("\n")))
    except DockerException as error:
        show(status.close())
        reason = "\n".join(seen[-FAILURE_TAIL:]) or str(error)
        if progress == "quiet":
            log(f"[{name}] FAILED after {time.monotonic() - started:.1f}s")
        return BuildResult(name, target.platforms, time.monotonic() - started, reason)
    finally:
        written = metadata.read_text() if metadata and metadata.exists() else ""
        if metadata:
            metadata.unlink(missing_ok=True)
    show(status.close())
    cached, total = status.steps()
    cache_error = status.cache_export_error()
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
    credentials = credentials_from_env(Settings.from_env().image)
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
    with OciLayout(layout) as oci:
        return str(oci.root()["digest"])


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


def raise_if_failed(results: list[BuildResult]) -> None:
    failed = [r.variant for r in results if not r.ok]
    if failed:
        raise SandboxError(f"build failed for {', '.join(failed)}", "see the log tail above")
