"""The benchmark report: each command rewrites its own section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from conjure_sandbox.benchmark import upload_host, write_section
from conjure_sandbox.errors import SandboxError


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
