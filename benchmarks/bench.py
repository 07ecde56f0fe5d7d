"""What every benchmark shares: a timed runner, a figure against its goal, a second
engine that has never built or pulled anything, and the report's sections.

The benchmarks are maintainer tools (``invoke bench``); the library never imports them.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.retry import CUT_OFF_BUILD
from conjure_sandbox.runner import is_transient

Log = Callable[[str], None]
COMMAND = "invoke bench"


@dataclass(frozen=True)
class Figure:
    """One comparison: our time, the reference's, their ratio against a goal."""

    name: str
    ours: float
    reference: float
    reference_name: str
    goal: float
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.reference if self.reference else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio <= self.goal


@dataclass
class Bench:
    """Runs commands from the project root with a fixed environment, timing each."""

    root: Path
    env: Mapping[str, str]
    log: Log = print
    outputs: list[str] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> float:
        """Run ``argv`` and return its wall-clock seconds; a run that BuildKit cut off
        (the rule ``invoke build`` retries by) is timed once more, never a failing step."""
        shown = " ".join(argv[2:] if argv[1:2] == ["-m"] else argv)
        for attempt in range(CUT_OFF_BUILD.tries):
            started = time.monotonic()
            out = subprocess.run(
                list(argv),
                cwd=self.root,
                env={**os.environ, **self.env, **(env or {})},
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.monotonic() - started
            if out.returncode == 0:
                break
            tail = "\n".join((out.stdout + out.stderr).splitlines()[-20:])
            if attempt == CUT_OFF_BUILD.retries or not is_transient(tail):
                raise SandboxError(
                    f"{shown} failed:\n{tail}",
                    "fix what the output above names, then run the benchmark again",
                )
            self.log(f"  cut off, not a failing step; timing it again: {shown}")
        self.outputs.append(out.stdout)
        self.log(f"  {seconds:7.2f}s  {shown}")
        return seconds

    def invoke(self, *args: str, env: Mapping[str, str] | None = None) -> float:
        return self.run([sys.executable, "-m", "invoke", *args], env=env)

    def median(self, runs: int, argv: Sequence[str]) -> float:
        self.run(argv)  # warm-up, not counted
        return statistics.median(self.run(argv) for _ in range(runs))


@contextmanager
def second_engine(scratch: Path, log: Log) -> Iterator[str]:
    """A second dockerd with its own data root, socket and build cache: a truly empty builder.

    It gets a bridge of its own: ``--bridge none`` would delete the first
    engine's docker0.
    """
    root = scratch / "engine"
    root.mkdir()
    bridge = "conjure-bench0"
    for step in (
        ["ip", "link", "add", bridge, "type", "bridge"],
        ["ip", "addr", "add", "172.31.250.1/24", "dev", bridge],
        ["ip", "link", "set", bridge, "up"],
    ):
        subprocess.run(step, check=True, capture_output=True)
    (root / "daemon.json").write_text('{"features": {"containerd-snapshotter": true}}')
    socket = f"unix://{root / 'docker.sock'}"
    argv = [
        *("dockerd", "--config-file", str(root / "daemon.json")),
        *("--data-root", str(root / "data"), "--exec-root", str(root / "exec")),
        *("--pidfile", str(root / "docker.pid"), "-H", socket),
        *("--bridge", bridge, "--iptables=false", "--ip6tables=false"),
    ]
    with (root / "dockerd.log").open("wb") as out:
        daemon = subprocess.Popen(argv, stdout=out, stderr=out)
    try:
        for _ in range(100):
            probe = subprocess.run(
                ["docker", "info"], env={**os.environ, "DOCKER_HOST": socket}, capture_output=True
            )
            if probe.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise SandboxError("a second dockerd did not start", f"see {root / 'dockerd.log'}")
        log(f"second engine on {socket}")
        yield socket
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)


def write_section(path: Path, text: str, title: str) -> None:
    """Put ``text`` (starting ``## title``) in place of that section of ``path``, or append it."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    start = current.find(f"\n## {title}\n")
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + 1)
        tail = current[end:] if end >= 0 else ""
        updated = current[: start + 1] + text.rstrip("\n") + "\n" + tail
    path.write_text(updated)


def run_facts() -> dict[str, str]:
    """When and where a benchmark ran: the first lines of every report section."""
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, engine {engine}",
    }
