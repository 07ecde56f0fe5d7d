"""Pulling an image through the engine's own API, so that a long pull can report progress.

The docker CLI draws a pull's progress only on a terminal; piped, it says
nothing for minutes. ``docker system dial-stdio`` connects to whichever engine
the CLI would use (its socket, ``DOCKER_HOST`` with TLS, a docker context,
Podman's Docker-compatible socket), so the engine's JSON progress messages
are read here as they arrive. ``PullTracker`` is pure: it turns those
messages into layers and bytes done out of the total known so far.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from conjure_sandbox.engine import reason as engine_reason

# Statuses after which a layer is downloaded: the containerd store and Podman say
# "Download complete" last, the classic store goes on to "Extracting" and "Pull complete".
_LAYER_DONE = frozenset({"Download complete", "Extracting", "Pull complete", "Already exists"})
# A layer is named before it is downloaded; these messages carry a layer's id.
_LAYER_STATUSES = frozenset(
    {"Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", *_LAYER_DONE}
)
# The one engine message that is bigger than a line of progress is an error's text.
_MAX_LINE = 1 << 20


@dataclass(frozen=True)
class PullProgress:
    """Where a pull stands: layers downloaded of the layers named, bytes downloaded of the
    sizes known (a layer's size is known once its download starts; Podman gives none)."""

    layers_done: int
    layers: int
    bytes_done: int
    bytes_total: int
    # Layers the engine already held ("Already exists"): nothing to download for those.
    layers_present: int = 0

    def describe(self) -> str:
        layers = f"{self.layers_done}/{self.layers} layers"
        if not self.bytes_total:
            return layers
        return f"{layers}, {_megabytes(self.bytes_done)} of {_megabytes(self.bytes_total)} MB"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f}"


@dataclass
class PullTracker:
    """Folds the engine's progress messages into a ``PullProgress``; pure."""

    _done: set[str] = field(default_factory=set)
    _present: set[str] = field(default_factory=set)
    _named: set[str] = field(default_factory=set)
    _current: dict[str, int] = field(default_factory=dict)
    _total: dict[str, int] = field(default_factory=dict)

    def feed(self, message: Mapping[str, Any]) -> PullProgress | None:
        """The progress after ``message``; None when it says nothing about a layer."""
        status, layer = message.get("status"), message.get("id")
        if status not in _LAYER_STATUSES or not isinstance(layer, str) or not layer:
            return None
        self._named.add(layer)
        detail = message.get("progressDetail")
        if status == "Downloading" and isinstance(detail, Mapping):
            current, total = detail.get("current"), detail.get("total")
            if isinstance(total, int) and total > 0:
                self._total[layer] = total
            if isinstance(current, int) and current >= 0:
                self._current[layer] = current
        elif status in _LAYER_DONE and layer in self._total:
            self._current[layer] = self._total[layer]
        if status in _LAYER_DONE:
            self._done.add(layer)
        if status == "Already exists":
            self._present.add(layer)
        return self.progress()

    def progress(self) -> PullProgress:
        return PullProgress(
            layers_done=len(self._done),
            layers=len(self._named),
            bytes_done=sum(min(self._current.get(k, 0), v) for k, v in self._total.items()),
            bytes_total=sum(self._total.values()),
            layers_present=len(self._present),
        )


class PullFailed(Exception):
    """The engine refused or ended the pull; the text is its own reason."""


def pull_with_progress(
    pinned: str, progress: Callable[[PullProgress], None], docker: str = "docker"
) -> None:
    """Pull ``pinned`` (``repo@sha256:…``) through the engine's API, calling ``progress``
    after each message about a layer. Raises PullFailed with the engine's reason, or OSError
    when the CLI cannot be started; a reference not pinned by digest is a ValueError."""
    # Here, not at import: the registry package costs ensure_image's found path its time.
    from conjure_sandbox.registry.reference import split_digest_ref

    found = split_digest_ref(pinned)
    if found is None:
        raise ValueError(f"{pinned!r} is not repo@sha256:<64 hex digits>")
    repository, digest = found
    query = urllib.parse.urlencode({"fromImage": repository, "tag": digest})
    request = (
        f"POST /images/create?{query} HTTP/1.1\r\n"
        "Host: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    tracker = PullTracker()
    with subprocess.Popen(
        [docker, "system", "dial-stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as dial:
        assert dial.stdin is not None  # a pipe
        try:
            dial.stdin.write(request.encode())
            dial.stdin.flush()
            for message in _messages(dial):
                error = message.get("error") or (message.get("errorDetail") or {}).get("message")
                if error:
                    raise PullFailed(str(error).strip().splitlines()[-1])
                update = tracker.feed(message)
                if update is not None:
                    progress(update)
        except BrokenPipeError:
            raise PullFailed(_stderr_reason(dial)) from None
        finally:
            dial.kill()


def _messages(dial: subprocess.Popen[bytes]) -> Iterator[Mapping[str, Any]]:
    """The JSON objects of the engine's answer, one per line; its non-2xx status as PullFailed."""
    assert dial.stdout is not None
    response = http.client.HTTPResponse(_Pipe(dial.stdout))  # type: ignore[arg-type]
    try:
        response.begin()
    except (http.client.HTTPException, OSError):
        raise PullFailed(_stderr_reason(dial)) from None
    if not 200 <= response.status < 300:
        body = response.read(_MAX_LINE).decode(errors="replace")
        try:
            reason = str(json.loads(body).get("message", body))
        except (json.JSONDecodeError, AttributeError):
            reason = body
        raise PullFailed(reason.strip() or f"the engine answered {response.status}")
    while line := response.readline(_MAX_LINE):
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(message, dict):
            yield message


class _Pipe:
    """What ``http.client.HTTPResponse`` needs of a socket: a file to read from."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def makefile(self, mode: str, *args: object, **kwargs: object) -> IO[bytes]:
        return self._stream


def _stderr_reason(dial: subprocess.Popen[bytes]) -> str:
    """Why dial-stdio could not reach the engine, in the CLI's own last line."""
    dial.wait(timeout=5)
    text = dial.stderr.read().decode(errors="replace") if dial.stderr else ""
    return engine_reason(text, "the docker CLI could not reach the engine")
