"""An HTTP server on loopback in a thread of its own: the base of the tests' stand-ins."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean: no line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class LoopbackServer:
    """Serves ``handler`` on ``127.0.0.1:port`` (0: a free one) until ``close()``."""

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        # A short poll: close() waits for the loop to notice, once per server and test.
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
