"""A stand-in for the storage a registry redirects blob reads to (GHCR's CDN, S3).

It serves blobs straight from a test registry's filesystem storage, as a
bucket would, and records the headers of every request it gets: the test
reads them to prove that no credential followed the redirect.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.loopback import LoopbackServer, QuietHandler


def stored_blob(storage: Path, digest: str) -> Path:
    """Where docker-registry's filesystem driver keeps the blob ``sha256:<hex>``."""
    hex_digest = digest.removeprefix("sha256:")
    return storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"


class BlobStore(LoopbackServer):
    """Listens on ``127.0.0.1:port``; ``GET /blobs/sha256:<hex>`` reads the registry's storage."""

    def __init__(self, port: int, storage: Path) -> None:
        self.requests: list[dict[str, str]] = []
        store = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                store.requests.append(dict(self.headers.items()))
                match = re.fullmatch(r"/blobs/(sha256:[0-9a-f]{64})", self.path)
                blob = stored_blob(storage, match[1]) if match else None
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
