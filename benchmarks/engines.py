"""``invoke bench --engines``: ``ensure_image()`` on each kind of engine users run.

minimal and full are pushed (host platform, zstd) to the loopback registry and
pinned; then, on each engine the tests can start (``tests/engines.py``), emptied
before every run, ``conjure-sandbox ensure`` pulls the pin and the first
``python3 -c`` runs under the executor's flags; then ``ensure`` runs again with the
image present, as a whole process (interpreter start included). The installed
engine is not emptied (the other tests share it): only its present time counts.
Starting the engines needs root.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench import COMMAND, Bench, run_facts, write_section
from conjure_sandbox.build import host_platform
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import EXECUTOR_FLAGS, docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pin, Pins
from conjure_sandbox.registry import fetch_manifest, parse_repository
from conjure_sandbox.tags import version_tag
from conjure_sandbox.version import package_version
from tests.engines import Engine, Engines

Log = Callable[[str], None]
SECTION = "Engines"
VARIANTS = ("minimal", "full")
KINDS = ("installed", "classic", "rootless", "podman", "remote")
# Issue #31: with the image present, ensure_image() answers within this, on every engine.
PRESENT_GOAL = 0.5


@dataclass(frozen=True)
class EngineRun:
    kind: str
    variant: str
    version: str
    pulls: tuple[float, ...]  # seconds: ensure's pull into the emptied engine (none: installed)
    first_results: tuple[float, ...]  # seconds: the first python3 -c after it
    presents: tuple[float, ...]  # seconds: ensure again, the image present

    @staticmethod
    def median(values: tuple[float, ...]) -> str:
        return f"{statistics.median(values):.2f}" if values else "-"


def publish(bench: Bench, registry: str, scratch: Path) -> tuple[str, Path]:
    """Push minimal and full for this platform; pin them as a release's pins would."""
    image = f"{registry}/conjure-bench/engines-{time.strftime('%Y%m%d%H%M%S')}"
    bench.invoke(
        *("build", "--variant", "minimal", "--variant", "full", "--platform", host_platform()),
        *("--push", "--no-sbom", "--progress", "quiet"),
        env={"CONJURE_IMAGE": image},
    )
    repository = parse_repository(image)
    catalogue = load_catalogue(docker_dir())
    pins: dict[str, Pin] = {}
    for variant in VARIANTS:
        ref = version_tag(image, package_version(), catalogue.get(variant))
        found = fetch_manifest(repository, ref.rpartition(":")[2])
        if found is None:
            raise SandboxError(f"{ref} is not in the registry after the push", "push it again")
        pins[variant] = Pin(found.digest, dict(found.platforms))
    path = scratch / "pins.json"
    path.write_text(Pins(package_version(), image, pins).to_json())
    return image, path


def measure(
    bench: Bench, engine: Engine, variant: str, image: str, pins: Path, runs: int
) -> EngineRun:
    env: Mapping[str, str] = {**engine.env, "CONJURE_PINS": str(pins), "CONJURE_IMAGE": image}
    ensure = [
        *(sys.executable, "-m", "conjure_sandbox.cli", "ensure", "--variant", variant),
        *("--registry", engine.registry, "--no-build"),
    ]
    pulls: list[float] = []
    firsts: list[float] = []
    presents: list[float] = []
    for _ in range(runs):
        if engine.env:
            engine.empty(keep=None)
            pulls.append(bench.run(ensure, env=env))
        else:
            bench.run(ensure, env=env)  # pulled or found: not timed
        ref = bench.outputs[-1].strip().splitlines()[-1]
        started = time.monotonic()
        engine.docker("run", "--rm", *EXECUTOR_FLAGS, ref, "python3", "-c", "print(1)")
        firsts.append(time.monotonic() - started)
        presents.append(bench.run(ensure, env=env))
    version = engine.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    return EngineRun(
        engine.kind, variant, version, tuple(pulls), tuple(firsts) if engine.env else (),
        tuple(presents),
    )  # fmt: skip


def report(measured: list[EngineRun], runs: int) -> tuple[str, list[str]]:
    facts = run_facts()
    lines = [
        f"## {SECTION}",
        "",
        f"`{COMMAND} --engines --runs {runs}` ({facts['date']}, {facts['machine']}). "
        "Each engine but the installed one is emptied before every run; medians of "
        f"{runs} run(s). *pull*: `conjure-sandbox ensure` pulling the pin (zstd, this "
        "machine's platform) from the loopback registry; *first result*: the first "
        "`python3 -c` under the executor's flags after it; *present*: `ensure` again as "
        f"a whole process with the image there (goal: at most {PRESENT_GOAL} s).",
        "",
        "| engine | version | variant | pull s | first result s | present s |",
        "|---|---|---|---|---|---|",
    ]
    missed: list[str] = []
    for r in measured:
        lines.append(
            f"| {r.kind} | {r.version} | {r.variant} | {r.median(r.pulls)} | "
            f"{r.median(r.first_results)} | {r.median(r.presents)} |"
        )
        if statistics.median(r.presents) > PRESENT_GOAL:
            missed.append(f"{r.kind} {r.variant}: present in {r.median(r.presents)} s")
    return "\n".join(lines) + "\n", missed


def run(registry: str, out: Path, runs: int, root: Path, log: Log = print) -> list[str]:
    """Measure, write the report section, return the goals missed."""
    bench = Bench(root=root, env={"CONJURE_BASE": "local"}, log=log)
    measured: list[EngineRun] = []
    with tempfile.TemporaryDirectory(prefix="conjure-bench-engines-") as scratch:
        image, pins = publish(bench, registry, Path(scratch))
        with Engines() as engines:
            for kind in KINDS:
                engine = engines.get(kind)
                for variant in VARIANTS:
                    log(f"{kind}: {variant}")
                    measured.append(measure(bench, engine, variant, image, pins, runs))
    text, missed = report(measured, runs)
    write_section(out, text, SECTION)
    return missed
