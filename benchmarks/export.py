"""``invoke bench --export``: the reproducible export and upload against a plain push."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench import COMMAND, Bench, Figure, Log, write_section
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan
from conjure_sandbox.request import Push

EXPORT_SECTION = "Reproducible export"


def upload_host(registry: str) -> str:
    """Another name for a loopback registry, under which the engine has pushed nothing.

    The engine remembers which blobs it pushed to which registry host and mounts
    them from there instead of uploading; a host name it has never pushed to makes
    the reference upload every blob, as our layout upload does.
    """
    host, _, port = registry.partition(":")
    if host != "127.0.0.1":
        raise SandboxError(
            f"the export benchmark needs the loopback registry, not {registry}",
            "unset CONJURE_REGISTRY, or set it to 127.0.0.1:<port>",
        )
    return f"localhost:{port}" if port else "localhost"


def export_cost(
    plan: BuildPlan, docker_dir: Path, registry: str, out: Path, log: Log = print
) -> list[Figure]:
    """Push the default variant, layers cached, the reproducible way and the plain way.

    Ours exports an OCI layout and uploads it; the reference is ``docker buildx
    build --push`` of the same plan. Both send the blobs BuildKit cached, push the
    plan's platforms to repositories of their own, and upload every blob.
    """
    plain_registry = upload_host(registry)  # refuses before any build
    bench = Bench(root=docker_dir.parent, env={"CONJURE_BASE": "local"}, log=log)
    target = plan.targets[0]
    platforms = [arg for p in target.platforms for arg in ("--platform", p)]
    stamp = time.monotonic_ns()
    bench.invoke("build", "--variant", target.variant.name, *platforms, "--no-sbom")  # cached
    log("reproducible export against a plain push")
    ours = bench.invoke(
        *("build", "--variant", target.variant.name, *platforms, "--push", "--no-sbom"),
        *("--tag", f"{registry}/conjure-bench/reproducible-{stamp}:0", "--progress", "quiet"),
    )
    with_sbom = bench.invoke(
        *("build", "--variant", target.variant.name, *platforms, "--push"),
        *("--tag", f"{registry}/conjure-bench/sbom-{stamp}:0", "--progress", "quiet"),
    )
    plain = replace(
        target,
        tags=(f"{plain_registry}/conjure-bench/plain-{stamp}:0",),
        delivery=Push(),
        sbom="",
        provenance="mode=max",
        layout="",
        metadata="",  # the dry-run plan names a scratch path nobody made
    )
    reference = bench.run([*plain.buildx_argv()[:-1], "--progress=quiet", str(plain.context)])
    name = f"push {target.variant.name} ({', '.join(target.platforms)}), layers cached"
    f = Figure(name, ours, reference, "docker buildx build --push, same plan", float("inf"))
    text = "\n".join(
        [
            f"## {EXPORT_SECTION}",
            "",
            f"Reproduce with `{COMMAND} --export`. One run, {datetime.now(UTC):%Y-%m-%d %H:%M} "
            f"UTC, {os.cpu_count()} cores;",
            f"every push to a repository of its own on {registry} (the plain one as",
            f"{plain_registry}, so that it uploads every blob too).",
            "",
            "| what | reproducible export + upload | plain push | ratio | with SBOM too |",
            "|---|---|---|---|---|",
            f"| {f.name} | {f.ours:.2f} s | {f.reference:.2f} s | {f.ratio:.2f}x "
            f"| {with_sbom:.2f} s |",
            "",
            "The reproducible path exports an OCI layout, its file times already set in each",
            "step (docker/scrub), so it sends the blobs BuildKit cached, as the plain push does,",
            "then uploads the layout itself.",
            "",
        ]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_section(out, text, EXPORT_SECTION)
    return [f]
