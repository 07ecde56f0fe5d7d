"""Reading a registry: manifests, blobs, tag lists (``Link`` pagination), sizes.

Plain HTTP against the distribution API, since neither the docker CLI nor
python-on-whales lists a repository's tags. Loopback registries are spoken to
over http, every other one over https. Every request gets the bounded retry of
``retry.REGISTRY`` on a 5xx or a network error, then one line naming the registry."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry.auth import Credentials, authorization, urlopen
from conjure_sandbox.registry.failures import (
    NETWORK_ERRORS,
    ServerError,
    retry_after,
    retry_network,
    unreachable,
)
from conjure_sandbox.registry.reference import Repository
from conjure_sandbox.retry import REGISTRY

_INDEX_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def _open(
    request: urllib.request.Request, credentials: Credentials | None
) -> tuple[bytes, Message]:
    """A GET that answers the registry's auth challenge once: the body and the headers."""
    try:
        with urlopen(request, timeout=30) as response:
            return bytes(response.read()), response.headers
    except urllib.error.HTTPError as error:
        if error.code != 401:
            raise
        challenge = error.headers.get("WWW-Authenticate", "")
    request.add_header("Authorization", authorization(challenge, credentials, request.full_url))
    with urlopen(request, timeout=30) as response:
        return bytes(response.read()), response.headers


def _document(body: bytes, repository: Repository, what: str) -> dict[str, Any]:
    """A registry's JSON answer as an object; anything else is one line naming ``what``."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise SandboxError(
            f"{repository.name}: {what} is not a JSON object",
            "check that the address is a container registry (its /v2/ API)",
        )
    return document


def _get(
    repository: Repository, path: str, credentials: Credentials | None, **headers: str
) -> bytes | None:
    """GET ``<repository>/v2/<path>``: None on 404, one-line errors for anything else."""
    found = _get_with_headers(repository, path, credentials, **headers)
    return found[0] if found else None


def _get_with_headers(
    repository: Repository, path: str, credentials: Credentials | None, **headers: str
) -> tuple[bytes, Message] | None:
    """``_get``, keeping the response headers (pagination's ``Link``)."""
    for attempt in range(REGISTRY.tries):
        request = urllib.request.Request(f"{repository.base_url}/{path}", headers=headers)
        try:
            return _open(request, credentials)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            if retry_after(f"{repository.name}: GET {path}", error.code, attempt):
                continue
            raise (ServerError if error.code >= 500 else SandboxError)(
                f"{repository.name}: GET {path} failed (HTTP {error.code})",
                "check the registry address and credentials",
            ) from None
        except NETWORK_ERRORS as error:
            if retry_network(f"{repository.name}: GET {path}", error, attempt):
                continue
            raise unreachable(repository.name, error) from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def list_tags(
    repository: Repository, credentials: Credentials | None = None, page: int = 1000
) -> list[str]:
    """Every tag in the repository, page after page (``Link``); none when it does not exist."""
    tags: list[str] = []
    path = f"tags/list?n={page}"
    while path:
        found = _get_with_headers(repository, path, credentials)
        if found is None:
            break
        body, headers = found
        tags.extend(_document(body, repository, "the tag list").get("tags") or [])
        path = _next_page(headers.get("Link", ""), repository)
    return tags


def _next_page(link: str, repository: Repository) -> str:
    """The path below ``/v2/<repository>/`` that a ``Link`` header's next page points to."""
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
    if not match:
        return ""
    target = urllib.parse.urlsplit(match[1])
    prefix = f"/v2/{repository.path}/"
    if not target.path.startswith(prefix):
        return ""
    return target.path[len(prefix) :] + (f"?{target.query}" if target.query else "")


@dataclass(frozen=True)
class RemoteManifest:
    """What a registry serves for a tag or digest: its digest, and an index's entries."""

    digest: str
    entries: tuple[str, ...] | None  # None: a single image manifest, not an index
    # An index's image manifests by platform (os/architecture), attestations left out.
    platforms: Mapping[str, str] = field(default_factory=dict)

    def image_for(self, platform: str) -> str | None:
        """The image for ``platform`` (``linux/arm64``): an index entry, or this manifest."""
        if self.entries is None:
            return self.digest
        return self.platforms.get("/".join(platform.split("/")[:2]))

    @property
    def images(self) -> frozenset[str]:
        """The images behind it: an index's platform images, or the manifest itself."""
        if self.entries is None:
            return frozenset({self.digest})
        return frozenset(self.platforms.values())


def fetch_manifest(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> RemoteManifest | None:
    """The manifest behind a tag or digest, or None when it does not exist."""
    body = _get(repository, f"manifests/{reference}", credentials, Accept=_INDEX_TYPES)
    if body is None:
        return None
    entries = _document(body, repository, f"the manifest of {reference}").get("manifests")
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": str(m["digest"])
        for m in entries or ()
        if m.get("platform", {}).get("os", "unknown") != "unknown"
    }
    return RemoteManifest(
        "sha256:" + hashlib.sha256(body).hexdigest(),
        None if entries is None else tuple(str(m["digest"]) for m in entries),
        platforms,
    )


def fetch_document(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> dict[str, Any]:
    """The parsed manifest or index behind a tag or digest; a one-line error when missing."""
    body = fetch_manifest_bytes(repository, reference, credentials)
    return _document(body, repository, f"the manifest of {reference}")


def fetch_manifest_bytes(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> bytes:
    """The bytes of the manifest or index behind a tag or digest, as the registry serves them."""
    body = _get(repository, f"manifests/{reference}", credentials, Accept=_INDEX_TYPES)
    if body is None:
        raise SandboxError(f"{repository.name}:{reference} does not exist", "push it first")
    if (
        reference.startswith("sha256:")
        and "sha256:" + hashlib.sha256(body).hexdigest() != reference
    ):
        raise SandboxError(f"{repository.name}: manifest {reference} is corrupt", "push it again")
    return body


def fetch_blob(
    repository: Repository, digest: str, credentials: Credentials | None = None
) -> bytes:
    """A blob's bytes, checked against its digest."""
    body = _get(repository, f"blobs/{digest}", credentials)
    if body is None or "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise SandboxError(
            f"{repository.name}: blob {digest} is missing or corrupt", "push the image again"
        )
    return body


def platform_image(
    repository: Repository, reference: str, platform: str, credentials: Credentials | None = None
) -> str | None:
    """The digest of ``reference``'s image for ``platform`` (``linux/arm64``), or None.

    ``reference`` is a tag or digest of an index, or of one platform's image.
    """
    found = fetch_manifest(repository, reference, credentials)
    return found.image_for(platform) if found else None


def layer_sizes(
    repository: Repository,
    reference: str,
    platform: str,
    credentials: Credentials | None = None,
) -> tuple[int, ...]:
    """Compressed bytes of each layer of ``reference`` for ``platform``, base layer first.

    ``reference`` is a tag or digest of an image manifest or of an index
    holding one for ``platform`` (``linux/amd64``).
    """
    where = f"{repository.name}:{reference}"
    found = fetch_manifest(repository, reference, credentials)
    if found is None:
        raise SandboxError(f"{where} does not exist", "push the image first")
    image = found.image_for(platform)
    if image is None:
        raise SandboxError(f"{where} has no {platform} image", "build that platform too")
    body = _get(repository, f"manifests/{image}", credentials, Accept=_INDEX_TYPES)
    manifest = _document(body or b"{}", repository, f"the manifest of {image}")
    return tuple(int(layer["size"]) for layer in manifest.get("layers", ()))


def tag_digest(
    repository: Repository, tag: str, credentials: Credentials | None = None
) -> str | None:
    """The digest a tag points at (the sha256 of its manifest), or None when it does not exist."""
    found = fetch_manifest(repository, tag, credentials)
    return found.digest if found else None
