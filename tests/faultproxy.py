"""A loopback HTTP proxy in front of a test registry that fails one chosen request.

The fault point is a rule, not a moment: "the 2nd PUT of manifests/0.1.0-minimal",
counted in the order requests arrive, so a test that cuts there cuts there on
every run. Actions:

- ``drop``: close the connection without forwarding (the registry never saw it);
- ``drop-after``: forward, then close without replying (it landed, the client
  does not know);
- ``500``: answer 500 Internal Server Error without forwarding.

With ``down`` every later request is dropped too, as if the registry had been
killed, or answered 500 when that was the fault (it fell over), until ``heal()``.

With ``blob_host`` it also plays a registry whose storage lives elsewhere
(GHCR's CDN, S3): a blob GET the registry answers 200 (auth checked) is
answered instead with a 307 to ``http://<blob_host>/blobs/<digest>``.
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass

from tests.loopback import LoopbackServer, QuietHandler


@dataclass(frozen=True)
class Fault:
    method: str
    path: str  # a regular expression searched in the request path
    nth: int = 1
    action: str = "drop"
    down: bool = False


class FaultProxy(LoopbackServer):
    """Listens on ``127.0.0.1:port`` (0: a free one), forwards to ``upstream`` (host:port),
    fails one request."""

    def __init__(
        self, port: int, upstream: str, fault: Fault | None = None, blob_host: str = ""
    ) -> None:
        self.upstream, self.fault, self.blob_host = upstream, fault, blob_host
        self.seen = 0
        self.fired = self.is_down = False
        self.lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def handle_one_request(self) -> None:
                # The engine tries TLS first on a loopback registry and falls back to
                # plain HTTP only when the answer starts with "HTTP/", as Go's server's does.
                if self.rfile.peek(1)[:1] == b"\x16":
                    self.wfile.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                    self.close_connection = True
                    return
                super().handle_one_request()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                action = proxy.decide(self.command, self.path)
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=600)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("transfer-encoding", "content-length", "connection")
                }
                if body or self.command in ("PUT", "POST", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                if action == "drop-after":
                    self.close_connection = True
                    return
                blob = re.search(r"/blobs/(sha256:[0-9a-f]{64})$", self.path)
                if proxy.blob_host and blob and self.command == "GET" and response.status == 200:
                    self.send_response(307)
                    self.send_header("Location", f"http://{proxy.blob_host}/blobs/{blob[1]}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(response.status, response.reason)
                for k, v in response.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        super().__init__(port, Handler)

    def decide(self, method: str, path: str) -> str:
        """What to do with this request: forward, or the fault's action."""
        with self.lock:
            if self.is_down:
                # Killed, every request is dropped; fallen over, every one answered 500.
                return "500" if self.fault and self.fault.action == "500" else "drop"
            fault = self.fault
            if fault and not self.fired and method == fault.method and re.search(fault.path, path):
                self.seen += 1
                if self.seen == fault.nth:
                    self.fired = True
                    self.is_down = fault.down
                    return fault.action
            return "forward"

    def heal(self) -> None:
        """The registry is back: forward everything from now on."""
        with self.lock:
            self.is_down, self.fault = False, None
