"""``invoke bench --first-run``: a user's first run, gzip layers against zstd, in one run.

Every variant is pushed in each compression to the loopback registry; then,
per compression, a new dockerd with an empty data root pulls each variant
(pull plus unpack) and runs its first command under the executor's flags.
A maintainer's tool: it starts a second engine, so it needs root, and its
times are compared as ratios within the run, never against fixed limits.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conjure_sandbox.benchmark import COMMAND, Bench, second_engine, write_section
from conjure_sandbox.compression import GZIP, ZSTD, Compression
from conjure_sandbox.config import EXECUTOR_FLAGS
from conjure_sandbox.plan import BuildPlan
from conjure_sandbox.registry import layer_sizes, parse_repository

Log = Callable[[str], None]
SECTION = "First run"
# Goals from issue #25: compressed size and full's pull, zstd against gzip.
SIZE_GOAL = 0.80
PULL_GOAL = 0.60
# The first command a skill's run gives the image: node's own, else python3's.
FIRST_COMMANDS: Mapping[str, tuple[str, ...]] = {"node": ("node", "-e", "console.log(1)")}
PYTHON_FIRST = ("python3", "-c", "print(1)")


@dataclass(frozen=True)
class FirstRun:
    """One variant in one compression: sizes as pushed, and a new engine's first run."""

    variant: str
    compression: Compression
    sizes: Mapping[str, int]  # platform -> compressed bytes of its layers
    pull: float
    first_result: float


@dataclass(frozen=True)
class Measured:
    runs: tuple[FirstRun, ...]
    # Seconds to push every variant in each compression, build steps cached: what the
    # compression costs a build (each layer compressed, then uploaded).
    push_seconds: Mapping[str, float]

    def get(self, variant: str, compression: Compression) -> FirstRun:
        return next(r for r in self.runs if (r.variant, r.compression) == (variant, compression))


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("inf")


def measure(plan: BuildPlan, docker_dir: Path, registry: str, log: Log = print) -> Measured:
    """Push every variant in gzip and in zstd for its catalogue platforms, then pull and
    run each in new engines."""
    bench = Bench(root=docker_dir.parent, env={"CONJURE_BASE": "local"}, log=log)
    stamp = time.strftime("%Y%m%d%H%M%S")
    compressions = (GZIP, ZSTD)
    repositories = {
        c.name: f"{registry}/conjure-bench/first-run-{c.name}-{stamp}" for c in compressions
    }
    pushed: dict[str, float] = {}
    for c in compressions:
        log(f"push every variant, {c} layers (build steps cached)")
        pushed[c.name] = bench.invoke(
            *("build", "--all", "--push", "--no-sbom", "--progress", "quiet"),
            *("--tag", f"{repositories[c.name]}:0", "--compression", c.name),
        )
    runs: list[FirstRun] = []
    for c in compressions:
        # One engine per compression, removed before the next: each pulls into nothing.
        repository = parse_repository(repositories[c.name])
        with (
            tempfile.TemporaryDirectory(prefix=f"conjure-first-run-{c.name}-") as scratch,
            second_engine(Path(scratch), log) as socket,
        ):
            engine = {"DOCKER_HOST": socket}
            for target in plan.targets:
                tag = f"0{target.variant.tag_suffix}"
                ref = f"{repository.name}:{tag}"
                command = FIRST_COMMANDS.get(target.variant.name, PYTHON_FIRST)
                pull = bench.run(["docker", "pull", "--quiet", ref], env=engine)
                first = bench.run(
                    ["docker", "run", "--rm", *EXECUTOR_FLAGS, ref, *command], env=engine
                )
                sizes = {p: sum(layer_sizes(repository, tag, p)) for p in target.variant.platforms}
                runs.append(FirstRun(target.variant.name, c, sizes, pull, first))
    return Measured(tuple(runs), pushed)


def report(measured: Measured, facts: Mapping[str, str]) -> tuple[str, list[str]]:
    """The report's section, and the goals missed (empty: every goal met)."""
    missed: list[str] = []
    variants = list(dict.fromkeys(r.variant for r in measured.runs))
    lines = [
        f"## {SECTION}",
        "",
        f"Reproduce with `{COMMAND} --first-run`. It starts a second dockerd (root needed) with an",
        "empty data root for each compression, which pulls every variant from the loopback",
        "registry and runs its first command under the executor's flags",
        f"(`{' '.join(EXECUTOR_FLAGS)}`): `{' '.join(PYTHON_FIRST)}`, or for node",
        f"`{' '.join(FIRST_COMMANDS['node'])}`.",
        "",
        *(f"- {key}: {value}" for key, value in facts.items()),
        "",
        "| variant | platform | gzip MB | zstd MB | size zstd/gzip | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        gzip, zstd = measured.get(variant, GZIP), measured.get(variant, ZSTD)
        for p in zstd.sizes:
            r = ratio(zstd.sizes[p], gzip.sizes[p])
            met = r <= SIZE_GOAL
            if not met:
                missed.append(f"{variant} {p} size {r:.2f}x gzip (goal <= {SIZE_GOAL:.2f}x)")
            lines.append(
                f"| {variant} | {p} | {gzip.sizes[p] / 1e6:.1f} | {zstd.sizes[p] / 1e6:.1f} "
                f"| {r:.2f}x | <= {SIZE_GOAL:.2f}x | {'yes' if met else 'NO'} |"
            )
    lines += [
        "",
        "| variant | pull + unpack, gzip | zstd | ratio | first result, gzip | zstd "
        "| pull to first result, gzip | zstd | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        gzip, zstd = measured.get(variant, GZIP), measured.get(variant, ZSTD)
        pull = ratio(zstd.pull, gzip.pull)
        mark = ""
        if variant == variants[0]:
            mark = f" (goal <= {PULL_GOAL:.2f}x: {'met' if pull <= PULL_GOAL else 'NOT met'})"
            if pull > PULL_GOAL:
                missed.append(f"{variant} pull {pull:.2f}x gzip (goal <= {PULL_GOAL:.2f}x)")
        total = ratio(zstd.pull + zstd.first_result, gzip.pull + gzip.first_result)
        lines.append(
            f"| {variant} | {gzip.pull:.2f} s | {zstd.pull:.2f} s | {pull:.2f}x{mark} "
            f"| {gzip.first_result:.2f} s | {zstd.first_result:.2f} s "
            f"| {gzip.pull + gzip.first_result:.2f} s | {zstd.pull + zstd.first_result:.2f} s "
            f"| {total:.2f}x |"
        )
    seconds = measured.push_seconds
    lines += [
        "",
        "What the compression costs a build: pushing every variant for its platforms, build "
        "steps cached, so the time is compressing each layer and uploading it: "
        f"gzip {seconds['gzip']:.1f} s, zstd {seconds['zstd']:.1f} s "
        f"({ratio(seconds['zstd'], seconds['gzip']):.2f}x).",
        "",
    ]
    return "\n".join(lines), missed


def run(
    plan: BuildPlan,
    docker_dir: Path,
    registry: str,
    out: Path,
    log: Log = print,
) -> list[str]:
    """Measure, write the report's section to ``out``; return the goals missed."""
    measured = measure(plan, docker_dir, registry, log)
    engine = os.popen("docker version --format '{{.Server.Version}}'").read().strip()
    facts = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, engine {engine}",
        "compressions": f"{GZIP} (BuildKit's default level) and {ZSTD}, forced on every layer",
        "times": "wall clock of one `docker pull` and one `docker run` per variant, each in "
        "an engine that has pulled nothing before",
    }
    text, missed = report(measured, facts)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_section(out, text, SECTION)
    return missed
