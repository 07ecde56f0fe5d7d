"""Registry references: repositories, hosts, digests; validated before use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from conjure_sandbox.errors import SandboxError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# A content digest as references, manifests and records write it.
DIGEST_PATTERN = r"sha256:[0-9a-f]{64}"
DIGEST = re.compile(rf"^{DIGEST_PATTERN}$")
# host[:port]/path in lower case, without tag or digest.
REPOSITORY = re.compile(r"^(?P<host>[a-z0-9.-]+(?::\d+)?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)$")


@dataclass(frozen=True)
class Repository:
    """``host[:port]/path`` of an image, without tag."""

    host: str
    path: str

    @property
    def name(self) -> str:
        return f"{self.host}/{self.path}"

    @property
    def base_url(self) -> str:
        loopback = self.host.split(":")[0] in LOOPBACK_HOSTS
        return f"{'http' if loopback else 'https'}://{self.host}/v2/{self.path}"


def looks_like_host(component: str) -> bool:
    """Whether a reference's first component names a registry (``ghcr.io``, ``host:5000``)."""
    return "." in component or ":" in component or component == "localhost"


def parse_repository(image: str) -> Repository:
    """``ghcr.io/holsee/conjure-sandbox`` -> Repository; a tag, digest or bare name is refused."""
    match = REPOSITORY.match(image)
    host = match["host"] if match else ""
    if not match or not looks_like_host(host):
        raise SandboxError(
            f"{image!r} is not an image repository with a registry host",
            "use host[:port]/path in lower case without tag, e.g. ghcr.io/holsee/conjure-sandbox",
        )
    return Repository(match["host"], match["repo"])
