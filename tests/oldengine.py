"""A stand-in for a Docker Engine older than 23, which cannot be installed here (Debian 13
ships 26): it answers the docker CLI's ping and version queries as 20.10 and records
every request, so a test can show that nothing was pulled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from tests.loopback import LoopbackServer, QuietHandler

OLD_VERSION = "20.10.24+dfsg1"
_API = "1.41"


@contextmanager
def old_engine() -> Iterator[tuple[str, list[str]]]:
    """``(DOCKER_HOST, requests seen)`` while the stand-in listens on loopback."""
    seen: list[str] = []
    version = {
        "Version": OLD_VERSION,
        "ApiVersion": _API,
        "MinAPIVersion": "1.12",
        "Os": "linux",
        "Arch": "amd64",
        "Components": [{"Name": "Engine", "Version": OLD_VERSION, "Details": {}}],
    }

    class Handler(QuietHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            if self.path.endswith("/_ping"):
                status, body = 200, b"OK"
            elif self.path.endswith("/version"):
                status, body = 200, json.dumps(version).encode()
            else:
                status, body = 404, b'{"message": "not served by the stand-in"}'
            self.send_response(status)
            self.send_header("Api-Version", _API)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = _answer

    server = LoopbackServer(0, Handler)
    try:
        yield f"tcp://{server.host}", seen
    finally:
        server.close()
