"""Pull progress, replayed from the engines' own answers.

``data/pull/`` holds the JSON lines three engines streamed for one pull of the
engine tests' minimal image (recorded with ``docker system dial-stdio``, as
``pull.pull_with_progress`` asks), each into an empty engine: the classic store,
the containerd store, and rootless Podman 4.3.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conjure_sandbox.cli import PROGRESS_EVERY, pull_printer
from conjure_sandbox.pull import PullProgress, PullTracker, pull_with_progress

RECORDED = Path(__file__).parent / "data" / "pull"


def _replay(engine: str) -> list[PullProgress]:
    tracker = PullTracker()
    lines = (RECORDED / f"{engine}.jsonl").read_text().splitlines()
    updates = [tracker.feed(json.loads(line)) for line in lines]
    return [u for u in updates if u is not None]


def _sizes(engine: str) -> dict[str, int]:
    """Each layer's size as the engine announced it, read straight from the recording."""
    sizes: dict[str, int] = {}
    for line in (RECORDED / f"{engine}.jsonl").read_text().splitlines():
        message = json.loads(line)
        total = (message.get("progressDetail") or {}).get("total")
        if message.get("status") == "Downloading" and total:
            sizes[message["id"]] = total
    return sizes


@pytest.mark.parametrize("engine", ["classic", "containerd", "podman"])
def test_every_layer_ends_downloaded_and_bytes_never_go_back(engine: str) -> None:
    seen = _replay(engine)
    last = seen[-1]
    assert last.layers >= 2
    assert last.layers_done == last.layers
    assert last.bytes_done == last.bytes_total == sum(_sizes(engine).values())
    done = [p.bytes_done for p in seen]
    assert done == sorted(done)
    assert [p.layers_done for p in seen] == sorted(p.layers_done for p in seen)


def test_the_classic_store_reports_bytes_as_they_arrive() -> None:
    seen = _replay("classic")
    last = seen[-1]
    assert last.bytes_total > 1_000_000
    assert any(0 < p.bytes_done < p.bytes_total for p in seen)
    assert last.layers_present == 0  # an empty engine
    assert last.describe() == (
        f"{last.layers}/{last.layers} layers, "
        f"{last.bytes_total / 1e6:.1f} of {last.bytes_total / 1e6:.1f} MB"
    )


def test_podman_gives_no_sizes_so_only_layers_are_shown() -> None:
    last = _replay("podman")[-1]
    assert last.bytes_total == 0
    assert last.describe() == f"{last.layers}/{last.layers} layers"


def test_messages_about_no_layer_and_odd_values_change_nothing() -> None:
    tracker = PullTracker()
    for message in (
        {"status": "Pulling from conjure-test/engines", "id": "0.1.0"},
        {"status": "Digest: sha256:abc"},
        {"status": "Downloading", "id": "", "progressDetail": {"current": 5, "total": 9}},
        {"status": "Downloading", "id": 7},
    ):
        assert tracker.feed(message) is None
    update = tracker.feed(
        {"status": "Downloading", "id": "a", "progressDetail": {"current": -1, "total": "big"}}
    )
    assert update == PullProgress(layers_done=0, layers=1, bytes_done=0, bytes_total=0)
    # A current beyond the total is counted as the total, not more.
    tracker.feed({"status": "Downloading", "id": "a", "progressDetail": {"current": 9, "total": 4}})
    assert tracker.progress().bytes_done == 4


def test_the_cli_prints_a_line_per_finished_layer_and_otherwise_every_few_seconds() -> None:
    lines: list[str] = []
    now = [0.0]
    show = pull_printer(lines.append, clock=lambda: now[0])
    step = PROGRESS_EVERY / 4
    for progress in _replay("classic"):
        show(progress)
        now[0] += step
    seen = _replay("classic")
    finished = len({p.layers_done for p in seen})
    assert finished <= len(lines) <= finished + len(seen) * step / PROGRESS_EVERY + 1
    assert lines[-1] == f"pulling: {seen[-1].describe()}"
    assert all(line.startswith("pulling: ") for line in lines)


@pytest.mark.parametrize(
    "ref",
    [
        "example/sandbox:0.1.0",
        "example/sandbox@sha256:abc",
        "@sha256:" + "a" * 64,
        "example/sandbox@sha256:" + "a" * 64 + "\n",
    ],
)
def test_only_a_reference_pinned_by_digest_is_pulled(ref: str) -> None:
    """Refused before any engine is asked: the request line is built from it."""
    with pytest.raises(ValueError, match="is not repo@sha256"):
        pull_with_progress(ref, lambda _: None, docker="/nonexistent/docker")
