"""The benchmark report: each command rewrites its own section of docs/benchmarks.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks.bench import Bench, write_section
from benchmarks.builds import run
from benchmarks.export import upload_host
from benchmarks.firstrun import FirstRun, Measured, report
from benchmarks.images import require_baseline
from conjure_sandbox.compression import GZIP, ZSTD, Compression
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import BuildPlan


def test_a_section_is_appended_then_replaced_in_place(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    write_section(
        report, "## Builds\n\nfirst builds\n\n### Edit one Dockerfile\n\nedit\n", "Builds"
    )
    write_section(report, "## Image workloads\n\nimages\n", "Image workloads")
    write_section(report, "## Builds\n\nsecond builds\n", "Builds")
    assert report.read_text() == (
        "# Benchmarks\n\n## Builds\n\nsecond builds\n\n## Image workloads\n\nimages\n"
    )


def test_the_last_section_is_replaced_to_the_end(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n## Builds\n\nb\n\n## Image workloads\n\nold\nlines\n")
    write_section(report, "## Image workloads\n\nnew\n", "Image workloads")
    assert report.read_text() == "# Benchmarks\n\n## Builds\n\nb\n\n## Image workloads\n\nnew\n"


def test_the_plain_push_goes_to_another_name_of_the_loopback_registry() -> None:
    assert upload_host("127.0.0.1:5000") == "localhost:5000"
    assert upload_host("127.0.0.1:5123") == "localhost:5123"


def test_the_export_benchmark_refuses_a_registry_it_cannot_alias() -> None:
    with pytest.raises(SandboxError, match="loopback registry"):
        upload_host("ghcr.io")


def _bench(tmp_path: Path, lines: list[str]) -> Bench:
    return Bench(root=tmp_path, env={}, log=lines.append)


def test_a_command_buildkit_cut_off_is_timed_again_once(tmp_path: Path) -> None:
    """The first run fails the way a dropped BuildKit session does, the second succeeds."""
    script = (
        "import pathlib, sys\n"
        "mark = pathlib.Path('ran')\n"
        "if not mark.exists():\n"
        "    mark.touch()\n"
        "    sys.exit('ERROR: failed to solve: error writing layer blob: context canceled')\n"
    )
    lines: list[str] = []
    seconds = _bench(tmp_path, lines).run([sys.executable, "-c", script])
    assert seconds > 0
    assert len(lines) == 2
    assert lines[0].strip().startswith("cut off, not a failing step")


def test_a_failing_step_stops_the_benchmark_at_once(tmp_path: Path) -> None:
    script = (
        "import pathlib, sys\n"
        "p = pathlib.Path('runs')\n"
        "p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n"
        "sys.exit('ERROR: process \"/bin/sh -c false\" did not complete successfully')\n"
    )
    with pytest.raises(SandboxError, match="did not complete successfully"):
        _bench(tmp_path, []).run([sys.executable, "-c", script])
    assert (tmp_path / "runs").read_text() == "x"


@pytest.mark.parametrize(("runs", "pairs", "option"), [(0, 3, "--runs"), (5, 0, "--cold-pairs")])
def test_a_count_below_one_is_refused_before_anything_runs(
    tmp_path: Path, runs: int, pairs: int, option: str
) -> None:
    out = tmp_path / "benchmarks.md"
    with pytest.raises(SandboxError, match=f"^{option} 0: "):
        run(BuildPlan(targets=()), tmp_path, "127.0.0.1:5000", out, runs=runs, cold_pairs=pairs)
    assert not out.exists()


@pytest.mark.parametrize(
    ("ref", "found"),
    [
        ("conjure-bench/before:latest", {}),  # not in the engine
        ("conjure-bench/before:latest", None),  # no engine answered
        ("--privileged", None),  # an option, not an image
    ],
)
def test_a_baseline_the_engine_lacks_is_one_line_with_its_fix(
    ref: str, found: dict[str, object] | None
) -> None:
    with pytest.raises(SandboxError) as caught:
        require_baseline(ref, found)
    assert str(caught.value).startswith(f"--baseline {ref!r} is not an image in the engine (fix:")
    assert "\n" not in str(caught.value)


def test_a_baseline_in_the_engine_is_accepted() -> None:
    require_baseline("conjure-bench/before:latest", {"conjure-bench/before:latest": object()})


def _first_run(variant: str, compression: Compression, mb: float, pull: float) -> FirstRun:
    sizes = {"linux/amd64": int(mb * 1e6), "linux/arm64": int(mb * 1.1e6)}
    return FirstRun(variant, compression, sizes, (pull + 1, pull, pull - 1), (0.5,))


def test_the_first_run_report_compares_zstd_with_gzip_and_names_each_missed_goal() -> None:
    measured = Measured(
        (
            _first_run("full", GZIP, 800, 20.0),
            _first_run("full", ZSTD, 600, 10.0),  # 0.75x size, 0.50x pull: met
            _first_run("node", GZIP, 300, 8.0),
            _first_run("node", ZSTD, 270, 7.0),  # 0.90x size: missed on both platforms
        ),
        {"gzip": 60.0, "zstd": 90.0},
    )
    text, missed = report(measured, {"date": "today"})
    assert text.startswith("## First run\n\nReproduce with `invoke bench --first-run` (")
    assert "| full | linux/amd64 | 800.0 | 600.0 | 0.75x | <= 0.80x | yes |" in text
    assert "| node | linux/arm64 | 330.0 | 297.0 | 0.90x | <= 0.80x | NO |" in text
    assert "| full | 20.00 s | 10.00 s | 0.50x (goal <= 0.60x: met) |" in text
    assert "gzip 60.0 s, zstd 90.0 s (1.50x). BuildKit compresses only" in text
    assert "- full: 21.00 / 11.00 s, 20.00 / 10.00 s, 19.00 / 9.00 s" in text
    assert missed == [
        "node linux/amd64 size 0.90x gzip (goal <= 0.80x)",
        "node linux/arm64 size 0.90x gzip (goal <= 0.80x)",
    ]
    slower = Measured(
        (*measured.runs[:1], _first_run("full", ZSTD, 600, 15.0)), {"gzip": 1.0, "zstd": 1.0}
    )
    assert report(slower, {})[1] == ["full pull 0.75x gzip (goal <= 0.60x)"]
