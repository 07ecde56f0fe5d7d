"""What a registry holds: a repository's tags and the digest behind a tag.

Plain HTTP against the distribution API (token or basic auth), since neither
the docker CLI nor python-on-whales lists a repository's tags. Loopback
registries are spoken to over http, every other one over https.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from conjure_sandbox.errors import SandboxError

_INDEX_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_REFERENCE = re.compile(r"^(?P<host>[a-z0-9.-]+(?::\d+)?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)$")


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
        loopback = self.host.split(":")[0] in ("127.0.0.1", "localhost", "::1")
        return f"{'http' if loopback else 'https'}://{self.host}/v2/{self.path}"


def parse_repository(image: str) -> Repository:
    """``ghcr.io/holsee/conjure-sandbox`` -> Repository; a tag, digest or bare name is refused."""
    match = _REFERENCE.match(image)
    host = match["host"] if match else ""
    if not match or ("." not in host and ":" not in host and host != "localhost"):
        raise SandboxError(
            f"{image!r} is not an image repository with a registry host",
            "use host[:port]/path in lower case without tag, e.g. ghcr.io/holsee/conjure-sandbox",
        )
    return Repository(match["host"], match["repo"])


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def _open(request: urllib.request.Request, credentials: Credentials | None) -> bytes:
    """GET with the registry's auth dance: basic, or a bearer token from its realm."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        if error.code != 401:
            raise
        challenge = error.headers.get("WWW-Authenticate", "")
    if challenge.lower().startswith("basic"):
        if credentials is None:
            raise SandboxError(
                f"{request.full_url} needs credentials",
                "set CONJURE_REGISTRY_USER and CONJURE_REGISTRY_PASSWORD",
            )
        request.add_header("Authorization", credentials.basic())
    else:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = urllib.parse.urlencode(
            {k: v for k, v in fields.items() if k in ("service", "scope")}
        )
        token_request = urllib.request.Request(f"{fields.get('realm', '')}?{query}")
        if credentials:
            token_request.add_header("Authorization", credentials.basic())
        with urllib.request.urlopen(token_request, timeout=30) as response:
            token = json.loads(response.read()).get("token", "")
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def list_tags(repository: Repository, credentials: Credentials | None = None) -> list[str]:
    """Every tag in the repository; none when it does not exist yet."""
    request = urllib.request.Request(f"{repository.base_url}/tags/list?n=10000")
    try:
        body = _open(request, credentials)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise SandboxError(
            f"{repository.name}: listing tags failed (HTTP {error.code})",
            "check the registry address and credentials",
        ) from None
    except OSError as error:
        raise SandboxError(
            f"{repository.name}: registry unreachable ({error})",
            "start the registry or check the network, then run again",
        ) from None
    return list(json.loads(body).get("tags") or [])


def _manifest_bytes(
    repository: Repository, reference: str, credentials: Credentials | None
) -> bytes | None:
    request = urllib.request.Request(
        f"{repository.base_url}/manifests/{reference}", headers={"Accept": _INDEX_TYPES}
    )
    try:
        return _open(request, credentials)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise SandboxError(
            f"{repository.name}:{reference}: HTTP {error.code}", "check the registry"
        ) from None
    except OSError as error:
        raise SandboxError(
            f"{repository.name}: registry unreachable ({error})",
            "start the registry or check the network, then run again",
        ) from None


def tag_digest(
    repository: Repository, tag: str, credentials: Credentials | None = None
) -> str | None:
    """The digest a tag points at (the sha256 of its manifest), or None when it does not exist."""
    body = _manifest_bytes(repository, tag, credentials)
    return None if body is None else "sha256:" + hashlib.sha256(body).hexdigest()


def image_manifests(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> frozenset[str] | None:
    """The image manifests behind a tag or digest: an index's entries, or the manifest itself."""
    body = _manifest_bytes(repository, reference, credentials)
    if body is None:
        return None
    entries = json.loads(body).get("manifests")
    if entries is None:
        return frozenset({"sha256:" + hashlib.sha256(body).hexdigest()})
    return frozenset(str(m["digest"]) for m in entries)


def is_index(
    repository: Repository, reference: str, credentials: Credentials | None = None
) -> bool:
    """Whether the reference is an index (several manifests) rather than one image manifest."""
    body = _manifest_bytes(repository, reference, credentials)
    return body is not None and "manifests" in json.loads(body)
