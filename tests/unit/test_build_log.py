"""What a plain-progress build log says about the cache export BuildKit was told to
let fail (``ignore-error=true``)."""

from __future__ import annotations

from conjure_sandbox.runner import cache_export_failure

REFUSED = "error writing layer blob: dial tcp 127.0.0.1:1: connect: connection refused"


def _log(export_outcome: str) -> list[str]:
    return [
        "#8 [stage-0 2/3] RUN scrub",
        "#8 DONE 1.2s",
        "#14 exporting to oci image format",
        "#14 sending tarball 1.1s done",
        "#14 DONE 1.4s",
        "#15 exporting cache to registry",
        "#15 preparing build cache for export 0.0s done",
        export_outcome,
    ]


def test_a_failed_cache_export_is_reported_with_its_reason() -> None:
    assert cache_export_failure(_log(f"#15 ERROR: {REFUSED}")) == REFUSED


def test_a_finished_cache_export_reports_nothing() -> None:
    assert cache_export_failure(_log("#15 DONE 0.3s")) is None


def test_an_error_in_another_vertex_is_not_the_cache_exports() -> None:
    lines = [*_log("#15 DONE 0.3s"), "#16 importing cache manifest", "#16 ERROR: not found"]
    assert cache_export_failure(lines) is None
    assert cache_export_failure(_log("#8 ERROR: exit code: 1")) is None
