"""Reading a registry: manifests, blobs, tag lists (``Link`` pagination), sizes.

Plain HTTP against the distribution API, since neither the docker CLI nor
python-on-whales lists a repository's tags. Loopback registries are spoken to
over http, every other one over https. Every request gets the bounded retry of
``retry.REGISTRY`` on a 5xx or a network error, then one line naming the registry.
Every answer is bounded (``transport``), every document checked for shape
(``documents``), and whatever is read by digest is checked against that digest."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import documents
from conjure_sandbox.registry.auth import Credentials, authorization
from conjure_sandbox.registry.failures import (
    NETWORK_ERRORS,
    ServerError,
    bounded_error,
    retry_after,
    retry_network,
    unreachable,
)
from conjure_sandbox.registry.reference import DIGEST, Repository, check_reference, digest_of
from conjure_sandbox.registry.transport import Overdue, Oversize, exchange
from conjure_sandbox.retry import REGISTRY

_INDEX_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
# A tag list longer than this many pages, or one whose pages link back, is refused.
MAX_TAG_PAGES = 1000


def _open(
    request: urllib.request.Request,
    repository: Repository,
    credentials: Credentials | None,
    blob: bool,
) -> tuple[bytes, Message]:
    """A GET that answers the registry's auth challenge once: the body and the headers."""
    try:
        return exchange(request, blob)
    except urllib.error.HTTPError as error:
        if error.code != 401:
            raise
        challenge = error.headers.get("WWW-Authenticate", "")
        answered_by = error.geturl()
    request.add_header(
        "Authorization", authorization(challenge, credentials, answered_by, repository)
    )
    return exchange(request, blob)


def _get(
    repository: Repository,
    path: str,
    credentials: Credentials | None,
    blob: bool = False,
    **headers: str,
) -> tuple[bytes, Message] | None:
    """GET ``<repository>/v2/<path>``: the body and headers, None on 404, one-line errors
    for anything else. A blob gets a blob's bounds, anything else a document's."""
    what = f"{repository.name}: GET {path}"
    for attempt in range(REGISTRY.tries):
        request = urllib.request.Request(f"{repository.base_url}/{path}", headers=headers)
        try:
            return _open(request, repository, credentials, blob)
        except (Overdue, Oversize) as error:
            raise bounded_error(what, error) from None
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            if retry_after(what, error.code, attempt):
                continue
            raise (ServerError if error.code >= 500 else SandboxError)(
                f"{what} failed (HTTP {error.code})",
                "check the registry address and credentials",
            ) from None
        except NETWORK_ERRORS as error:
            if retry_network(what, error, attempt):
                continue
            raise unreachable(repository.name, error) from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def list_tags(
    repository: Repository, credentials: Credentials | None = None, page: int = 1000
) -> list[str]:
    """Every tag in the repository, page after page (``Link``); none when it does not exist."""
    where = f"{repository.name}: the tag list"
    tags: list[str] = []
    path = f"tags/list?n={page}"
    seen: set[str] = set()
    while path:
        if path in seen or len(seen) >= MAX_TAG_PAGES:
            raise SandboxError(
                f"{where} goes on past {len(seen)} pages "
                f"({'a page links back to one already read' if path in seen else 'too many'})",
                "check the registry's tag pagination",
            )
        seen.add(path)
        found = _get(repository, path, credentials)
        if found is None:
            break
        body, headers = found
        tags.extend(documents.tag_page(documents.parse_object(body, where), where))
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

    @property
    def members(self) -> frozenset[str]:
        """Everything it names: an index's every entry (attestations included), or itself."""
        return frozenset({self.digest} if self.entries is None else self.entries)


def fetch_manifest(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> RemoteManifest | None:
    """The manifest behind a tag or digest, or None when it does not exist."""
    found = _manifest(repository, reference, credentials)
    if found is None:
        return None
    body, document = found
    entries = document.get("manifests")
    platforms = {
        f"{m['platform'].get('os', '')}/{m['platform'].get('architecture', '')}": m["digest"]
        for m in entries or ()
        if m.get("platform", {}).get("os", "unknown") != "unknown"
    }
    return RemoteManifest(
        digest_of(body),
        None if entries is None else tuple(m["digest"] for m in entries),
        platforms,
    )


def fetch_document(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> dict[str, Any]:
    """The parsed manifest or index behind a tag or digest; a one-line error when missing."""
    return _existing(repository, reference, credentials)[1]


def fetch_manifest_bytes(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> bytes:
    """The bytes of the manifest or index behind a tag or digest, as the registry serves them;
    a one-line error when missing."""
    return _existing(repository, reference, credentials)[0]


def _existing(
    repository: Repository, reference: str, credentials: Credentials | None
) -> tuple[bytes, dict[str, Any]]:
    found = _manifest(repository, reference, credentials)
    if found is None:
        raise SandboxError(f"{repository.name}:{reference} does not exist", "push it first")
    return found


def _manifest(
    repository: Repository, reference: str, credentials: Credentials | None
) -> tuple[bytes, dict[str, Any]] | None:
    """A manifest's bytes and its checked document, None on 404. One asked for by digest
    must have that digest."""
    check_reference(repository.name, reference)
    found = _get(repository, f"manifests/{reference}", credentials, Accept=_INDEX_TYPES)
    if found is None:
        return None
    body = found[0]
    if DIGEST.match(reference) and digest_of(body) != reference:
        raise SandboxError(
            f"{repository.name}: manifest {reference} is corrupt (its bytes have another digest)",
            "push it again, or check what answers for this registry",
        )
    where = f"{repository.name}: the manifest of {reference}"
    return body, documents.check_manifest(documents.parse_object(body, where), where)


def fetch_blob(
    repository: Repository, digest: str, credentials: Credentials | None = None
) -> bytes:
    """A blob's bytes (an image config, an attestation), checked against its digest."""
    if not DIGEST.match(digest):
        raise SandboxError(
            f"{repository.name}: {digest[:80]!r} is not a blob digest", "push the image again"
        )
    found = _get(repository, f"blobs/{digest}", credentials, blob=True)
    if found is None or digest_of(found[0]) != digest:
        raise SandboxError(
            f"{repository.name}: blob {digest} is missing or corrupt", "push the image again"
        )
    return found[0]


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
    manifest = fetch_document(repository, image, credentials)
    return tuple(int(layer["size"]) for layer in manifest.get("layers", ()))


def tag_digest(
    repository: Repository, tag: str, credentials: Credentials | None = None
) -> str | None:
    """The digest a tag points at (the sha256 of its manifest), or None when it does not exist."""
    found = fetch_manifest(repository, tag, credentials)
    return found.digest if found else None
