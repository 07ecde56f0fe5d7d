"""buildx's rawjson progress read as data: steps, the cache from which they came, the cache
export's failure, and the log rendered from it. The streams under data/rawjson are what
buildx wrote for real builds (see the README there)."""

from __future__ import annotations

import json
from pathlib import Path

from conjure_sandbox.progress import Progress, read

DATA = Path(__file__).parent / "data" / "rawjson"
REFUSED = "dial tcp 127.0.0.1:1: connect: connection refused"


def _stream(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def test_a_cold_build_ran_both_steps_and_its_refused_cache_export_is_named() -> None:
    progress = read(_stream("cold-cache-export-refused.json"))
    assert progress.steps() == (0, 2)  # FROM is not a step of ours
    error = progress.cache_export_error()
    assert error is not None
    assert error.startswith("error writing layer blob")
    assert error.endswith(REFUSED)


def test_the_same_build_again_takes_both_steps_from_the_cache() -> None:
    assert read(_stream("cached-cache-export-refused.json")).steps() == (2, 2)


def test_a_failed_step_is_its_vertex_s_error_and_buildx_s_own_lines_pass_through() -> None:
    progress = Progress()
    shown = [line for raw in _stream("failed-step.json") for line in progress.feed(raw)]
    step = next(v for v in progress.vertices.values() if v.name.startswith("[2/2] RUN"))
    assert step.error.endswith("did not complete successfully: exit code: 3")
    assert f"#{step.number} ERROR: {step.error}" in shown
    assert f"#{step.number} about to fail" in shown  # the step's own output, decoded
    assert shown[-1].startswith("ERROR: failed to solve: process")
    assert progress.cache_export_error() is None  # an error, but not the cache export's


def test_the_log_reads_like_plain_progress() -> None:
    progress = Progress()
    shown = [
        line for raw in _stream("cached-cache-export-refused.json") for line in progress.feed(raw)
    ]
    numbers = {v.name: v.number for v in progress.vertices.values()}
    step = numbers["[2/3] RUN echo one > /one"]
    assert shown.index(f"#{step} [2/3] RUN echo one > /one") < shown.index(f"#{step} CACHED")
    assert not any(line.startswith("{") or line.startswith('"') for line in shown)
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))


def test_stage_and_platform_prefixed_steps_count_and_one_line_objects_are_read() -> None:
    def vertex(digest: str, name: str, **state: object) -> str:
        return json.dumps({"vertexes": [{"digest": digest, "name": name, **state}]})

    lines = [
        vertex("a", "[internal] load build definition from Dockerfile", completed="t"),
        vertex("b", "[stage-0 1/4] FROM docker.io/library/base", cached=True),
        vertex("c", "[stage-0 2/4] RUN apt-get update", cached=True),
        vertex("d", "[linux/arm64 python-env 2/3] RUN pip install"),
        vertex("e", "[stage-0 4/4] WORKDIR /workspace", completed="t"),
        vertex("f", "exporting to image"),
    ]
    assert read(lines).steps() == (1, 3)


def test_an_object_cut_off_mid_way_is_shown_as_it_came() -> None:
    progress = Progress()
    assert progress.feed("{") == []
    assert progress.feed('  "vertexes": [') == []
    assert progress.close() == ["{", '  "vertexes": [']
    assert progress.feed("ERROR: failed to solve: context canceled") == [
        "ERROR: failed to solve: context canceled"
    ]
