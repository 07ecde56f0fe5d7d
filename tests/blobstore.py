"""A stand-in for the storage a registry redirects blob reads to (GHCR's CDN, S3).

It serves blobs straight from a test registry's filesystem storage, as a
bucket would, and records the headers of every request it gets: the test
reads them to prove that no credential followed the redirect.
"""

from __future__ import annotations

import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.loopback import LoopbackServer


class BlobStore(LoopbackServer):
    """Listens on ``127.0.0.1:port``; ``GET /blobs/sha256:<hex>`` reads the registry's storage."""

    def __init__(self, port: int, storage: Path) -> None:
        self.requests: list[dict[str, str]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                store.requests.append(dict(self.headers.items()))
                match = re.fullmatch(r"/blobs/sha256:([0-9a-f]{64})", self.path)
                blob = (
                    storage / "docker/registry/v2/blobs/sha256" / match[1][:2] / match[1] / "data"
                    if match
                    else None
                )
                if blob is None or not blob.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = blob.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(port, Handler)
