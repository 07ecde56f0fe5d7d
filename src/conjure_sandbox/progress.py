"""buildx's structured progress (``--progress rawjson``), read as data.

Pure. buildx writes BuildKit's solve status to stderr as JSON objects, one after
another (pretty-printed: each ends with a ``}`` line of its own), and after them,
on a failure, its own text (``ERROR: failed to solve: …``). ``Progress`` takes
that stream line by line: it keeps each vertex (a Dockerfile step, a cache
export, …) with whether it came from the cache and how it failed, and renders
every change as a line in the style of ``--progress plain`` for the build log.
Step counts and the cache export's failure are read from the vertices, not from
the rendered text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A Dockerfile step's vertex is named like "[stage-0 3/7] RUN ..." or
# "[linux/arm64 python-env 2/3] RUN ...". FROM is left out: resolving a base is
# cached or not by where the base was found, not by the build.
_STEP = re.compile(r"^\[[^\]]*\d+/\d+\] (?!FROM )")
_CACHE_EXPORT = "exporting cache"


@dataclass
class Vertex:
    """One vertex as the stream has told of it so far."""

    number: int  # in order of first appearance, as plain progress numbers them
    name: str
    cached: bool = False
    started: str = ""
    completed: str = ""
    error: str = ""

    @property
    def is_step(self) -> bool:
        return bool(_STEP.match(self.name))


class Progress:
    """Reads buildx's rawjson stderr one line at a time (``feed``)."""

    def __init__(self) -> None:
        self.vertices: dict[str, Vertex] = {}  # by digest
        self._pending: list[str] = []

    def feed(self, line: str) -> list[str]:
        """Take one line of buildx's stderr; return the log lines it makes (maybe none)."""
        if not self._pending and not line.startswith("{"):
            return [line]  # buildx's own text
        self._pending.append(line)
        if not line.startswith("}") and not (len(self._pending) == 1 and line.endswith("}")):
            return []
        text, self._pending = "\n".join(self._pending), []
        try:
            status = json.loads(text)
        except ValueError:
            return text.splitlines()  # not an object after all: shown as it came
        return self._apply(status) if isinstance(status, dict) else text.splitlines()

    def close(self) -> list[str]:
        """The lines of an object the stream cut off, shown as they came."""
        left, self._pending = self._pending, []
        return left

    def steps(self) -> tuple[int, int]:
        """(cached, total) Dockerfile steps."""
        steps = [v for v in self.vertices.values() if v.is_step]
        return sum(v.cached for v in steps), len(steps)

    def cache_export_error(self) -> str | None:
        """Why exporting the build cache failed, if it did (it is exported with
        ``ignore-error=true``, so such a build still succeeds)."""
        errors = [
            v.error for v in self.vertices.values() if v.name.startswith(_CACHE_EXPORT) and v.error
        ]
        return errors[-1] if errors else None

    def _apply(self, status: Mapping[str, Any]) -> list[str]:
        shown: list[str] = []
        for entry in status.get("vertexes") or ():
            shown += self._vertex(entry)
        for entry in status.get("statuses") or ():
            vertex = self.vertices.get(str(entry.get("vertex", "")))
            if vertex and entry.get("completed"):
                shown.append(f"#{vertex.number} {entry.get('id', '')} done")
        for entry in status.get("logs") or ():
            vertex = self.vertices.get(str(entry.get("vertex", "")))
            prefix = f"#{vertex.number} " if vertex else ""
            shown += [prefix + text for text in _decoded(entry.get("data")).splitlines()]
        for entry in status.get("warnings") or ():
            shown.append(f"WARNING: {_decoded(entry.get('short')).strip()}")
        return shown

    def _vertex(self, entry: Mapping[str, Any]) -> list[str]:
        digest, name = str(entry.get("digest", "")), str(entry.get("name", ""))
        vertex = self.vertices.get(digest)
        shown = []
        if vertex is None:
            vertex = self.vertices[digest] = Vertex(len(self.vertices) + 1, name)
            shown.append(f"#{vertex.number} {name}")
        vertex.started = vertex.started or str(entry.get("started") or "")
        if entry.get("cached") and not vertex.cached:
            vertex.cached = True
            shown.append(f"#{vertex.number} CACHED")
        if entry.get("error") and not vertex.error:
            vertex.error = str(entry["error"])
            shown.append(f"#{vertex.number} ERROR: {vertex.error}")
        if entry.get("completed") and not vertex.completed:
            vertex.completed = str(entry["completed"])
            if not vertex.cached and not vertex.error:
                shown.append(f"#{vertex.number} DONE {_seconds(vertex):.1f}s")
        return shown


def read(lines: Iterable[str]) -> Progress:
    """A whole stream at once (tests, saved logs)."""
    progress = Progress()
    for line in lines:
        progress.feed(line)
    progress.close()
    return progress


def _decoded(data: object) -> str:
    try:
        return base64.b64decode(str(data or "")).decode(errors="replace")
    except (binascii.Error, ValueError):
        return ""


def _seconds(vertex: Vertex) -> float:
    try:
        started = datetime.fromisoformat(vertex.started)
        completed = datetime.fromisoformat(vertex.completed)
    except ValueError:
        return 0.0
    return max((completed - started).total_seconds(), 0.0)
