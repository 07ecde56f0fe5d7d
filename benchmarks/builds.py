"""``invoke bench``: ``invoke build`` against ``docker buildx bake`` on the same plan, one run.

Writes a Markdown report with the figures and the command that reproduces
them. It prunes the build cache for the cold figures, so it is a maintainer's
tool, never part of the test suite: times on a shared machine are compared as
ratios within one run, not against fixed limits.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.bench import COMMAND, Bench, Figure, Log, run_facts, second_engine, write_section
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan
from conjure_sandbox.tags import prefixed_tag

EDITED = "Dockerfile.node"


def _prune(bench: Bench) -> None:
    bench.run(["docker", "buildx", "prune", "--all", "--force"])


def _remove_images(prefix: str, plan: BuildPlan) -> None:
    refs = [prefixed_tag(prefix, t.variant) for t in plan.targets]
    subprocess.run(["docker", "image", "rm", "--force", *refs], capture_output=True, check=False)


def _rows(stdout: str) -> list[str]:
    table = stdout[stdout.index("variant ") :].splitlines()
    return [line for line in table if line and not line.startswith(("-", " "))]


def _table(title: str, seconds: float, stdout: str) -> list[str]:
    """A build's summary table under a title, as a Markdown block for the report."""
    return [f"{title} ({seconds:.1f} s):", "", "```", *_rows(stdout), "```"]


def noop(bench: Bench, plan: BuildPlan, bake_file: Path, runs: int) -> list[Figure]:
    """Warm no-op: nothing changed since the last build, images loaded."""
    bench.log("warm no-op")
    ours = bench.median(runs, [sys.executable, "-m", "invoke", "build", "--all"])
    bake = bench.median(
        runs, ["docker", "buildx", "bake", "-f", str(bake_file), "--progress=quiet"]
    )
    plain = bake_file.with_name("bake-no-cache-export.json")
    definition = json.loads(bake_file.read_text())
    for target in definition["target"].values():
        target["cache-to"] = []
    plain.write_text(json.dumps(definition))
    bare = bench.median(runs, ["docker", "buildx", "bake", "-f", str(plain), "--progress=quiet"])
    return [
        Figure("warm no-op, all variants", ours, bake, "bake, same plan (cache export)", 1.0),
        Figure(
            "warm no-op, all variants",
            ours,
            bare,
            "bake without cache export",
            1.0,
            "a bake file as most projects write it: images only",
        ),
    ]


def edit_one(bench: Bench, docker_dir: Path, scratch: Path) -> list[str]:
    """Edit one Dockerfile in a copy of docker/: which variants rebuild, and how."""
    bench.log(f"edit {EDITED}")
    fork = scratch / "docker"
    shutil.copytree(docker_dir, fork)
    env = {"CONJURE_DOCKER_DIR": str(fork), "SOURCE_DATE_EPOCH": "1700000000"}
    args = ("build", "--all", "--tag", "conjure-bench/edit:0", "--cache", str(scratch / "cache"))
    bench.invoke(*args, env=env)
    edited = fork / EDITED
    # A step of the variant's own, after the shared layers it copies; new on every run,
    # or the engine's build cache from an earlier bench would hold it.
    edited.write_text(edited.read_text() + f'RUN echo "edit {time.time_ns()}" >/tmp/edited\n')
    seconds = bench.invoke(*args, env=env)
    return _table(f"after editing {EDITED}", seconds, bench.outputs[-1])


def cold(bench: Bench, plan: BuildPlan, pairs: int) -> tuple[Figure, float, list[str]]:
    """No cached step, base present: all variants against the default variant alone.

    ``pairs`` times, each pair full alone then all, so a drift in the machine's
    speed reaches both sides; the figure compares the medians (single cold runs
    here differed by 5%), and its detail lists every pair. Also returns the median
    time of all variants and the last pair's tables, whose cached-step counts show
    the builds were cold.
    """
    bench.log(f"cold builds (--no-cache, build cache pruned before each), {pairs} pair(s)")
    prefix = "conjure-bench/cold:0"
    default = next(t.variant.name for t in plan.targets if t.variant.default)
    # --no-cache too: the engine's images keep build-cache records alive through a prune
    # (a pruned "cold" build here found 11 of 11 steps cached).
    cold_args = ("--tag", prefix, "--cache", "none", "--no-cache")
    alone: list[float] = []
    every: list[float] = []
    tables: list[str] = []
    for _ in range(pairs):
        _remove_images(prefix, plan)
        _prune(bench)
        alone.append(bench.invoke("build", "--variant", default, *cold_args))
        tables = [*_table("full alone", alone[-1], bench.outputs[-1]), ""]
        _remove_images(prefix, plan)
        _prune(bench)
        every.append(bench.invoke("build", "--all", *cold_args))
        tables += _table("all variants", every[-1], bench.outputs[-1])
    listed = ", ".join(
        f"{a:.1f} s / {f:.1f} s ({a / f:.2f}x)" for a, f in zip(every, alone, strict=True)
    )
    figure = Figure(
        "cold, all variants",
        statistics.median(every),
        statistics.median(alone),
        "cold, full variant alone",
        1.10,
        f"medians of {pairs} pair(s); each pair, all / full alone: {listed}",
    )
    return figure, figure.ours, ["The last pair's builds:", "", *tables]


def fresh_builder(
    bench: Bench, registry: str, cold_all: float, images: Sequence[str], scratch: Path
) -> Figure:
    """A second engine that has never built anything importing the registry cache.

    It gets the local ``images`` (the base, the SBOM generator) as a maintainer's
    new machine would after ``invoke base``; it has no network to build them.
    """
    bench.log("a new engine importing the registry cache")
    prefix = "conjure-bench/imported:0"
    cache = f"{registry}/conjure-bench/cache"
    bench.invoke("build", "--all", "--tag", prefix, "--cache", cache)  # export to the registry
    with second_engine(scratch, bench.log) as socket:
        engine = {"DOCKER_HOST": socket}
        saved = " ".join(images)
        bench.run(["bash", "-c", f"docker save {saved} | DOCKER_HOST={socket} docker load -q"])
        seconds = bench.invoke("build", "--all", "--tag", prefix, "--cache", cache, env=engine)
    return Figure(
        "new engine + registry cache, all variants",
        seconds,
        cold_all,
        "cold, all variants",
        0.2,
        f"a second dockerd with an empty data root and {', '.join(images)} loaded, "
        f"cache in {cache}; "
        "most of the time goes to unpacking the layers into the new engine's image store, "
        "which loading any image there costs",
    )


SECTION = "Builds"


def report(
    figures: list[Figure], edit: list[str], cold_tables: list[str], facts: Mapping[str, str]
) -> str:
    lines = [
        f"## {SECTION}",
        "",
        f"Reproduce with `{COMMAND}` (`--runs N` for the no-op medians, `--cold-pairs N`",
        "for the cold ones). It prunes the build cache: run it on a machine whose cache",
        "you can rebuild.",
        "",
        *(f"- {key}: {value}" for key, value in facts.items()),
        "",
        "| scenario | invoke build | reference | reference time | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.name} | {f.ours:.2f} s | {f.reference_name} | {f.reference:.2f} s "
            f"| {f.ratio:.2f}x | <= {f.goal:.2f}x | {'yes' if f.met else 'NO'} |"
        )
    notes = [f"- {f.name} vs {f.reference_name}: {f.detail}" for f in figures if f.detail]
    sections = ["### Edit one Dockerfile", "", *edit, "", "### Cold builds", "", *cold_tables]
    return "\n".join([*lines, "", *notes, "", *sections, ""])


def run(
    plan: BuildPlan,
    docker_dir: Path,
    registry: str,
    out: Path,
    runs: int = 5,
    cold_pairs: int = 3,
    log: Log = print,
) -> list[Figure]:
    """Measure every scenario in one run and write the report to ``out``."""
    for option, count in (("--runs", runs), ("--cold-pairs", cold_pairs)):
        if count < 1:
            raise SandboxError(
                f"{option} {count}: a median needs one run or more", f"pass {option} 1 or more"
            )
    root = docker_dir.parent
    bench = Bench(root=root, env={"CONJURE_BASE": "local"}, log=log)
    with tempfile.TemporaryDirectory(prefix="conjure-bench-") as scratch_name:
        scratch = Path(scratch_name)
        bake_file = scratch / "bake.json"
        bake_file.write_text(json.dumps(plan.bake_definition(), indent=2))
        bench.invoke("build", "--all")  # make sure the warm state exists
        figures = noop(bench, plan, bake_file, runs)
        edit = edit_one(bench, docker_dir, scratch)
        cold_figure, cold_all, cold_tables = cold(bench, plan, cold_pairs)
        first = plan.targets[0]
        local = [dict(first.build_args)["BASE"], *([first.sbom] if first.sbom else [])]
        figures += [cold_figure, fresh_builder(bench, registry, cold_all, local, scratch)]
    facts = {
        **run_facts(),
        "platform": "the host's only, on the local base (CONJURE_BASE=local)",
        "no-op medians": f"{runs} runs after one warm-up, wall clock of the whole command",
        "cold medians": f"{cold_pairs} pair(s) of cold builds, full alone then all",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_section(out, report(figures, edit, cold_tables, facts), SECTION)
    return figures
