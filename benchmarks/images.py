"""``invoke bench --images``: what the images cost to run, in fresh containers, one run.

Every figure is taken inside a container started with the executor's flags,
so that ``docker run`` itself is not counted: the first LibreOffice
conversion, a first formula recalculation, a first Playwright screenshot, the
first import of the science stack, and the cold start of the heavy Python
imports side by side with the design's sample image built on the same base
(runs alternate, so drift hits both alike). With ``--baseline IMAGE`` (an
earlier build of the default variant), the interpreter's start and the cold
imports are also compared with it, alternating the same way. Sizes are the
compressed layers as pushed to the loopback registry. Writes the "Image
workloads" section of docs/benchmarks.md.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench import write_section
from conjure_sandbox.cabundle import secret_spec
from conjure_sandbox.config import EXECUTOR_FLAGS
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan
from conjure_sandbox.registry import layer_sizes, parse_repository

Log = Callable[[str], None]
COMMAND = "invoke bench --images"
SECTION = "Image workloads"
SAMPLE_DOCKERFILE = "benchmarks/design-sample.Dockerfile"
SAMPLE_IMAGE = "conjure-bench/design-sample:latest"
COLD_IMPORT = "python3 -c 'import pandas, matplotlib.pyplot, pyarrow'"
START = "python3 -c pass"
SCIENCE_IMPORT = "python3 -c 'import sklearn, scipy.stats, statsmodels.api, cv2'"
# How much slower than the baseline the start and the cold imports may be.
BASELINE_GOAL = 1.05

# The webapp-testing skill's workflow: a page served on loopback, Chromium's headless
# shell launched as the skill launches it, a screenshot; prints what the page showed.
SCREENSHOT = """\
import http.server, socketserver, threading
from playwright.sync_api import sync_playwright

PAGE = (b"<html><body style='margin:0;background:#ffffff'>"
    b"<div id='box' style='width:200px;height:120px;background:rgb(0,128,255)'></div>"
    b"<h1 id='title'>Loopback page</h1>"
    b"<script>document.getElementById('title').textContent += ' ready'</script></body></html>")

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(PAGE)
    def log_message(self, *args):
        pass

server = socketserver.TCPServer(("127.0.0.1", 0), Page)
threading.Thread(target=server.serve_forever, daemon=True).start()
with sync_playwright() as p:
    browser = p.chromium.launch(headless=True)
    page = browser.new_page(viewport={"width": 400, "height": 300})
    page.goto(f"http://localhost:{server.server_address[1]}/")
    page.wait_for_load_state("networkidle")
    page.screenshot(path="/tmp/shot.png")
    print(page.text_content("#title"))
    browser.close()
"""

MAKE_DOCX = (
    "python3 -c 'from docx import Document; d = Document(); "
    'd.add_heading("Benchmark memo", 1); d.add_paragraph("One page of text."); '
    'd.save("/tmp/memo.docx")\''
)
MAKE_XLSX = (
    "python3 -c 'from openpyxl import Workbook; b = Workbook(); s = b.active; "
    '[s.append([i, i * 2, f"=A{i}*B{i}"]) for i in range(1, 51)]; '
    's["D1"] = "=SUM(C1:C50)"; b.save("/tmp/book.xlsx")\''
)
# A LibreOffice Basic module of our own: recalculate the open document, save it, close it.
RECALC_MACRO = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" '
    '"module.dtd">\n'
    '<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" '
    'script:language="StarBasic">\n'
    "Sub RecomputeAndStore()\n  ThisComponent.calculateAll()\n  ThisComponent.store()\n"
    "  ThisComponent.close(True)\nEnd Sub\n</script:module>\n"
)
RECALC_MACRO_URL = (
    "vnd.sun.star.script:Standard.Module1.RecomputeAndStore?language=Basic&location=application"
)
RECALC = (
    "soffice --headless --terminate_after_init"
    ' && printf %s "$MACRO" > "$XDG_CONFIG_HOME/libreoffice/4/user/basic/Standard/Module1.xba"'
    f" && soffice --headless --norestore '{RECALC_MACRO_URL}' /tmp/book.xlsx"
)


@dataclass(frozen=True)
class Timing:
    """Seconds of one command in fresh containers (median of runs), and its stderr."""

    name: str
    image: str
    seconds: tuple[float, ...]
    stderr_bytes: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @classmethod
    def of(cls, name: str, image: str, results: Sequence[tuple[float, int]]) -> Timing:
        """From ``timed`` results: every run's seconds, the most stderr any run wrote."""
        return cls(name, image, tuple(s for s, _ in results), max(e for _, e in results))


def timed(image: str, setup: str, command: str, env: Sequence[str] = ()) -> tuple[float, int]:
    """Run ``setup``, then time ``command`` inside one fresh executor-style container.

    Returns the command's wall seconds and how many bytes it wrote to stderr;
    a failing command is an error (a benchmark of a broken workflow says nothing).
    """
    script = (
        f"{setup or 'true'} && s=$(date +%s%N) && {{ {command} ; }} >/dev/null 2>/tmp/bench.err"
        ' && e=$(date +%s%N) && echo "$(( (e - s) / 1000 )) $(wc -c < /tmp/bench.err)"'
    )
    env_args = [arg for pair in env for arg in ("-e", pair)]
    out = subprocess.run(
        ["docker", "run", "--rm", *EXECUTOR_FLAGS, *env_args, image, "bash", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{command} in {image} failed:\n{out.stdout}{out.stderr}")
    micros, errors = out.stdout.split()[-2:]
    return int(micros) / 1e6, int(errors)


def measure(
    name: str, image: str, setup: str, command: str, runs: int, env: Sequence[str] = ()
) -> Timing:
    return Timing.of(name, image, [timed(image, setup, command, env) for _ in range(runs)])


def require_baseline(ref: str, found: Mapping[str, object] | None) -> None:
    """Refuse a ``--baseline`` the engine does not hold (``found``: what it holds of ``ref``).

    Checked before anything is built: ``docker run`` would otherwise try to pull it, or
    read a value starting with a dash as its own option, an hour into the bench.
    """
    if ref.startswith("-") or not found or ref not in found:
        raise SandboxError(
            f"--baseline {ref!r} is not an image in the engine",
            "build the earlier commit first (git worktree add /tmp/before REV, then "
            "invoke build --variant full --tag conjure-bench/before there) and pass its tag",
        )


def alternating(
    name: str, command: str, ours: str, other: str, runs: int, log: Log
) -> tuple[Timing, Timing]:
    """``command`` in our image and another, alternating so that drift hits both."""
    timed(ours, "", command)  # page cache warm for both, not counted
    timed(other, "", command)
    mine: list[tuple[float, int]] = []
    theirs: list[tuple[float, int]] = []
    for _ in range(runs):
        mine.append(timed(ours, "", command))
        theirs.append(timed(other, "", command))
    log(f"  {name}: ours {[s for s, _ in mine]}, {other} {[s for s, _ in theirs]}")
    return Timing.of(name, ours, mine), Timing.of(name, other, theirs)


def build_sample(root: Path, base: str, ca_bundle: Path | None, log: Log) -> None:
    log(f"building the design's sample image on {base}")
    secret = ["--secret", secret_spec(ca_bundle)] if ca_bundle else []
    subprocess.run(
        [
            *("docker", "buildx", "build", "--load", "--progress", "quiet"),
            *("--file", str(root / SAMPLE_DOCKERFILE), "--tag", SAMPLE_IMAGE),
            *("--build-arg", f"BASE={base}", *secret, str(root / "docker")),
        ],
        check=True,
        capture_output=True,
    )


def pushed_sizes(image: str, registry: str, name: str, platform: str) -> tuple[int, ...]:
    """Push ``image`` to the loopback registry as ``conjure-bench/size:<name>``; its layers."""
    ref = f"{registry}/conjure-bench/size:{name}"
    subprocess.run(["docker", "tag", image, ref], check=True)
    subprocess.run(["docker", "push", "--quiet", ref], check=True, capture_output=True)
    return layer_sizes(parse_repository(f"{registry}/conjure-bench/size"), name, platform)


def layer_steps(image: str) -> list[str]:
    """The build step of each non-empty layer of a loaded image, base layer first."""
    out = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    steps = []
    for line in reversed(out.splitlines()):
        size, created = line.split("\t", 1)
        if size not in ("0B", "0"):
            steps.append(" ".join(created.split())[:70])
    return steps


def report(
    timings: list[Timing],
    cold: tuple[Timing, Timing],
    sizes: dict[str, tuple[int, ...]],
    steps: tuple[str, list[str]],
    facts: dict[str, str],
    against_baseline: Sequence[tuple[Timing, Timing]] = (),
) -> str:
    """The section's Markdown; ``steps`` is the default variant's name and its layers' steps."""
    ours, sample = cold
    ratio = ours.median / sample.median
    lines = [
        f"## {SECTION}",
        "",
        f"Reproduce with `{COMMAND}` (`--runs N` for more runs, `--baseline IMAGE` to compare",
        "the start and the cold imports with an earlier build; the images must be built).",
        "Every time is taken inside a fresh container started with the executor's flags",
        f"(`{' '.join(EXECUTOR_FLAGS)}`), so it excludes `docker run` itself.",
        "",
        *(f"- {key}: {value}" for key, value in facts.items()),
        "",
        "| workload | image | median | runs | stderr bytes | goal |",
        "|---|---|---|---|---|---|",
    ]
    goals = {
        "first docx to PDF": "<= 5 s",
        "first xlsx recalculation": "<= 10 s",
        "first Playwright screenshot": "<= 3 s",
    }
    for t in timings:
        runs = ", ".join(f"{s:.2f}" for s in t.seconds)
        goal = goals.get(t.name, "")
        lines.append(
            f"| {t.name} | {t.image} | {t.median:.2f} s | {runs} | {t.stderr_bytes} | {goal} |"
        )
    for t in (*cold, *(t for pair in against_baseline for t in pair)):
        runs = ", ".join(f"{s:.2f}" for s in t.seconds)
        lines.append(f"| {t.name} | {t.image} | {t.median:.2f} s | {runs} | {t.stderr_bytes} | |")
    lines += [
        "",
        f"Cold imports, ours against the design's sample on the same base: {ratio:.2f}x "
        f"(goal <= 0.80x, {'met' if ratio <= 0.8 else 'NOT met'}); stderr "
        f"{ours.stderr_bytes} bytes against {sample.stderr_bytes}.",
        *(
            f"{now.name}, ours against {then.image}: {now.median / then.median:.2f}x "
            f"(goal <= {BASELINE_GOAL:.2f}x, "
            f"{'met' if now.median / then.median <= BASELINE_GOAL else 'NOT met'})."
            for now, then in against_baseline
        ),
        "",
        "Compressed linux/amd64 sizes as pushed (MB):",
        "",
        "| image | total | layers, base first |",
        "|---|---|---|",
    ]
    for name, layers in sizes.items():
        listed = " + ".join(f"{size / 1e6:.1f}" for size in layers)
        lines.append(f"| {name} | {sum(layers) / 1e6:.1f} | {listed} |")
    name, described = steps
    lines += ["", f"Layers of the default image ({name}):", ""]
    pairs = zip(sizes[name], described, strict=False)
    lines += [f"- {size / 1e6:6.1f} MB `{step}`" for size, step in pairs]
    return "\n".join([*lines, ""])


def run(
    plan: BuildPlan,
    root: Path,
    registry: str,
    ca_bundle: Path | None,
    out: Path,
    platform: str,
    runs: int = 5,
    baseline: str | None = None,
    log: Log = print,
) -> float:
    """Measure, write the section of ``out``; returns the cold-import ratio."""
    images = {t.variant.name: t.tags[0] for t in plan.targets}
    default = next(t for t in plan.targets if t.variant.default)
    full = default.tags[0]
    base = dict(default.build_args)["BASE"]
    build_sample(root, base, ca_bundle, log)
    log("first LibreOffice uses")
    macro = [f"MACRO={RECALC_MACRO}"]
    timings = [
        measure(
            "first docx to PDF",
            full,
            MAKE_DOCX,
            "soffice --headless --convert-to pdf --outdir /tmp /tmp/memo.docx",
            runs,
        ),
        measure("first xlsx recalculation", full, MAKE_XLSX, RECALC, runs, macro),
    ]
    log("first Playwright screenshot, first science imports")
    write_script = f"printf %s {shlex.quote(SCREENSHOT)} > /tmp/shot.py"
    timings += [
        measure("first Playwright screenshot", full, write_script, "python3 /tmp/shot.py", runs),
        measure("first science imports", full, "", SCIENCE_IMPORT, runs),
    ]
    log("cold imports")
    cold = alternating("cold imports", COLD_IMPORT, full, SAMPLE_IMAGE, runs, log)
    against_baseline = []
    if baseline:
        log(f"start and cold imports against {baseline}")
        against_baseline = [
            alternating("python3 start", START, full, baseline, runs, log),
            alternating("cold imports", COLD_IMPORT, full, baseline, runs, log),
        ]
    log("sizes")
    sizes = {name: pushed_sizes(ref, registry, name, platform) for name, ref in images.items()}
    sizes["design sample"] = pushed_sizes(SAMPLE_IMAGE, registry, "design-sample", platform)
    facts = {"runs": f"{runs} per workload, each in a new container", "platform": platform}
    steps = (default.variant.name, layer_steps(full))
    write_section(out, report(timings, cold, sizes, steps, facts, against_baseline), SECTION)
    return cold[0].median / cold[1].median
