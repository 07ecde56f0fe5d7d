"""One HTTP exchange with a registry, bounded: a deadline for the whole answer (redirects,
headers and body), a cap on the body, and the origin that credentials belong to.

A registry is untrusted input. urllib's ``timeout`` bounds each socket read,
so an answer that sends a byte now and then is never given up on; here every
read is also held to the request's deadline. A body is read as ``cap + 1``
bytes at most, so an oversize answer is refused without being held.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import time
import urllib.parse
import urllib.request
from email.message import Message
from typing import IO, Any

MiB = 1024 * 1024
# Manifests, indexes, tag pages and token answers: a real one is a few KiB.
DOCUMENT_CAP = 4 * MiB
# A blob read into memory (an image config, an SBOM statement, a layer verify opens):
# the full image's largest layer is 263 MiB compressed.
BLOB_CAP = 1024 * MiB
# Whole-request deadlines, and the longest wait for any one read within them.
DOCUMENT_DEADLINE = 60.0
BLOB_DEADLINE = 1800.0
READ_TIMEOUT = 30.0

Origin = tuple[str, str, int | None]


class Overdue(Exception):
    """The whole answer did not arrive within the request's deadline."""


class Oversize(Exception):
    """The answer's body is larger than the cap for its kind (``cap``, in bytes)."""

    def __init__(self, cap: int) -> None:
        super().__init__(cap)
        self.cap = cap


def origin(url: str) -> Origin:
    """Scheme, host and port: what must stay the same for credentials to go with a request."""
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side that gives up at the deadline, however the bytes trickle."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        # The socket's own raw reader: it keeps the socket open until this is closed.
        self._raw = sock.makefile("rb", buffering=0)
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise Overdue()
        self._sock.settimeout(min(left, READ_TIMEOUT))
        try:
            return self._raw.readinto(buffer) or 0
        except TimeoutError:
            if time.monotonic() >= self._deadline:
                raise Overdue() from None
            raise

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """A connected socket whose reads (status line, headers, body) share one deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> IO[bytes]:
        """What http.client reads the answer from (it asks for ``rb`` and nothing else)."""
        if mode != "rb":
            raise ValueError(f"only 'rb' is supported, not {mode!r}")
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Deadline:
    """Mixed into http.client's connections: the socket it connects keeps the deadline."""

    sock: Any

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        self.deadline = deadline
        super().__init__(*args, **kwargs)

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock, self.deadline)


class _HTTPConnection(_Deadline, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Deadline, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPConnection, deadline=self.deadline)
        return self.do_open(connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPSConnection, deadline=self.deadline)
        context = getattr(self, "_context", None)
        return self.do_open(connection, req, context=context)


class _CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Follows redirects, dropping ``Authorization`` once one leaves the original origin.

    urllib copies every header added with ``add_header`` onto the redirected
    request, whatever its host; a blob CDN would receive the registry's token.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(newurl) != origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _opener(deadline: float) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        _CredentialsStayHome, _HTTPHandler(deadline), _HTTPSHandler(deadline)
    )


def exchange(request: urllib.request.Request, blob: bool = False) -> tuple[bytes, Message]:
    """Send ``request`` and read the whole answer within a document's (or a blob's) deadline
    and cap: its body and headers.

    urllib's ``HTTPError`` (any status but 2xx after redirects) passes through;
    ``Overdue`` and ``Oversize`` say which bound the answer broke.
    """
    cap, seconds = (BLOB_CAP, BLOB_DEADLINE) if blob else (DOCUMENT_CAP, DOCUMENT_DEADLINE)
    with _opener(time.monotonic() + seconds).open(request, timeout=READ_TIMEOUT) as response:
        body = response.read(cap + 1)
        if len(body) > cap:
            raise Oversize(cap)
        return bytes(body), response.headers
