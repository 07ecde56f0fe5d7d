"""Registry references: repositories, hosts, digests; validated before use."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from conjure_sandbox.errors import SandboxError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# A content digest as references, manifests and records write it.
DIGEST_PATTERN = r"sha256:[0-9a-f]{64}"
# Anchored with \Z, not $: "$" also matches before a trailing newline.
DIGEST = re.compile(rf"\A{DIGEST_PATTERN}\Z")
# repo@sha256:<hex>: an image pinned by digest, as records, pins and pulls write it.
DIGEST_REF = re.compile(rf"\A(?P<repository>[^@\s]+)@(?P<digest>{DIGEST_PATTERN})\Z")
# A tag as the distribution spec allows it.
TAG = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
# host[:port]/path in lower case, without tag or digest.
REPOSITORY = re.compile(
    r"\A(?P<host>[a-z0-9.-]+(?::\d+)?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)\Z"
)


def digest_of(content: bytes) -> str:
    """The content digest of ``content``, as registries and manifests write it."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def split_digest_ref(ref: str) -> tuple[str, str] | None:
    """``repo@sha256:…`` as (repository, digest); None for anything else."""
    match = DIGEST_REF.match(ref)
    return (match["repository"], match["digest"]) if match else None


def digest_in(ref: str) -> str:
    """The digest of ``repo@sha256:…``; anything else is one line."""
    found = split_digest_ref(ref)
    if found is None:
        raise SandboxError(f"{ref[:120]!r} is not repo@sha256:<64 hex>", "pin the image by digest")
    return found[1]


def check_reference(repository: str, reference: str) -> str:
    """``reference`` if it is a tag or a digest, before it becomes part of a URL."""
    if DIGEST.match(reference) or TAG.match(reference):
        return reference
    raise SandboxError(
        f"{repository}: {reference[:80]!r} is neither a tag nor a sha256 digest",
        "check the reference (a registry's document may have named it)",
    )


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
