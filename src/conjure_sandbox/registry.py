"""What a registry holds: a repository's tags and the digest behind a tag.

Plain HTTP against the distribution API (bearer tokens earned per scope, or
basic auth), since neither the docker CLI nor python-on-whales lists a
repository's tags. Tag lists follow ``Link`` pagination. Loopback
registries are spoken to over http, every other one over https.

Credentials stay with their host: a redirect to another host (GHCR's blob
CDN, an S3-backed registry's storage) is followed without ``Authorization``,
as requests' ``rebuild_auth`` does, and a token realm must be https unless
it is on loopback. Every request gets the same bounded retry on a 5xx or a
network error (refused, reset, timed out, unresolvable), then one line that
names the registry.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO, Any

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.retry import REGISTRY

_INDEX_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
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


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def credentials_from_env(
    environ: Mapping[str, str] | None = None, stdin: bool = False
) -> Credentials | None:
    """CONJURE_REGISTRY_USER with CONJURE_REGISTRY_PASSWORD, or the password on stdin."""
    env = os.environ if environ is None else environ
    user = env.get("CONJURE_REGISTRY_USER")
    if not user:
        if stdin:
            raise SandboxError("--password-stdin needs a user", "set CONJURE_REGISTRY_USER")
        return None
    password = (
        sys.stdin.readline().rstrip("\n") if stdin else env.get("CONJURE_REGISTRY_PASSWORD", "")
    )
    if not password:
        raise SandboxError(
            "CONJURE_REGISTRY_USER is set without a password",
            "set CONJURE_REGISTRY_PASSWORD or pipe it to --password-stdin",
        )
    return Credentials(user, password)


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what must stay the same for credentials to follow a redirect."""
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class _CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Follows redirects, dropping ``Authorization`` once one leaves the original origin.

    urllib copies every header added with ``add_header`` onto the redirected
    request, whatever its host; a blob CDN would receive the registry's token.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_CredentialsStayHome)


def _urlopen(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    response: http.client.HTTPResponse = _OPENER.open(request, timeout=timeout)
    return response


def _check_realm(realm: str, url: str) -> None:
    """A token realm gets the user's password: https only, or http on loopback."""
    parts = urllib.parse.urlsplit(realm)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS:
        return
    raise SandboxError(
        f"{url} sends its credentials to the token realm {realm!r}, which is not https",
        "use a registry whose token service is https (plain http only on loopback)",
    )


def _authorization(challenge: str, credentials: Credentials | None, url: str) -> str:
    """The Authorization header a 401's challenge asks for: basic, or a bearer token."""
    if challenge.lower().startswith("basic"):
        if credentials is None:
            raise SandboxError(
                f"{url} needs credentials",
                "set CONJURE_REGISTRY_USER and CONJURE_REGISTRY_PASSWORD",
            )
        return credentials.basic()
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = fields.get("realm", "")
    _check_realm(realm, url)
    query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
    token_request = urllib.request.Request(f"{realm}?{query}")
    if credentials:
        token_request.add_header("Authorization", credentials.basic())
    try:
        with _urlopen(token_request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SandboxError(
            f"the token service {realm} refused {fields.get('scope', 'access')} "
            f"(HTTP {error.code})",
            "check CONJURE_REGISTRY_USER / CONJURE_REGISTRY_PASSWORD and the token's scopes",
        ) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise SandboxError(
            f"the token service {realm} did not answer ({network_reason(error)})",
            "check the registry's auth and the network, then run again",
        ) from None
    # The distribution spec names it "token"; OAuth2-style services answer "access_token".
    token = answer.get("token") or answer.get("access_token")
    if not token:
        raise SandboxError(f"the token service {realm} gave no token", "check the registry's auth")
    return f"Bearer {token}"


def _open(
    request: urllib.request.Request, credentials: Credentials | None
) -> tuple[bytes, Message]:
    """A GET that answers the registry's auth challenge once: the body and the headers."""
    try:
        with _urlopen(request, timeout=30) as response:
            return bytes(response.read()), response.headers
    except urllib.error.HTTPError as error:
        if error.code != 401:
            raise
        challenge = error.headers.get("WWW-Authenticate", "")
    request.add_header("Authorization", _authorization(challenge, credentials, request.full_url))
    with _urlopen(request, timeout=30) as response:
        return bytes(response.read()), response.headers


class ServerError(SandboxError):
    """The registry kept answering 5xx for one request, through every retry."""


# What fails a request before any HTTP answer: refused, reset, timed out, unresolvable
# (all OSError, urllib's URLError included), or a reply cut off mid-way.
NETWORK_ERRORS = (OSError, http.client.HTTPException)
# Such an answer as docker and buildx print it: "unexpected status from HEAD request
# to http://...: 500 Internal Server Error".
SERVER_ERROR = re.compile(r"\b(5\d\d) (Internal Server Error|Bad Gateway|Service Unavailable)\b")
# A network error as docker and buildx print it (Go's net errors).
NETWORK_ERROR = re.compile(
    r"connection refused|connection reset by peer|i/o timeout|no such host|"
    r"TLS handshake timeout|unexpected EOF|broken pipe",
    re.IGNORECASE,
)


def retry_after(what: str, code: int, attempt: int) -> bool:
    """Whether to try ``what`` again after HTTP ``code``; says so on stderr when it does."""
    return code >= 500 and REGISTRY.again(what, f" answered HTTP {code}", attempt)


def network_reason(error: BaseException) -> str:
    """``Connection refused`` rather than ``<urlopen error [Errno 111] ...>``."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def retry_network(what: str, error: BaseException, attempt: int) -> bool:
    """Whether to try ``what`` again after a network error; says so on stderr when it does."""
    return REGISTRY.again(what, f": {network_reason(error)}", attempt)


def unreachable(registry: str, error: BaseException) -> SandboxError:
    """The one line for a registry that stayed unreachable through every retry."""
    return SandboxError(
        f"{registry}: registry unreachable after {REGISTRY.tries} tries ({network_reason(error)})",
        "start the registry or check the address and the network, then run again",
    )


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
        tags.extend(json.loads(body).get("tags") or [])
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
    entries = json.loads(body).get("manifests")
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
    document: dict[str, Any] = json.loads(fetch_manifest_bytes(repository, reference, credentials))
    return document


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
    manifest = json.loads(body or b"{}")
    return tuple(int(layer["size"]) for layer in manifest.get("layers", ()))


def tag_digest(
    repository: Repository, tag: str, credentials: Credentials | None = None
) -> str | None:
    """The digest a tag points at (the sha256 of its manifest), or None when it does not exist."""
    found = fetch_manifest(repository, tag, credentials)
    return found.digest if found else None


class _Pusher:
    """Blob and manifest uploads to one repository, keeping the authorization it earned."""

    def __init__(self, repository: Repository, credentials: Credentials | None) -> None:
        self.repository, self.credentials = repository, credentials
        self.auth: str | None = None
        self.answered: set[str] = set()  # challenges already answered with a token

    def call(
        self, method: str, url: str, data: bytes | IO[bytes] | None = None, **headers: str
    ) -> tuple[int, Message]:
        stream = None if data is None or isinstance(data, bytes) else data
        replayable = stream is None or stream.seekable()  # a retry must send the body again
        for attempt in range(REGISTRY.tries):
            if stream is not None and replayable:
                stream.seek(0)
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            if self.auth:
                request.add_header("Authorization", self.auth)
            try:
                with _urlopen(request, timeout=600) as response:
                    response.read()
                    return int(response.status), response.headers
            except urllib.error.HTTPError as error:
                challenge = error.headers.get("WWW-Authenticate", "")
                if error.code == 401 and challenge not in self.answered:
                    # A token is earned per scope: the pull token of a HEAD does not push.
                    self.answered.add(challenge)
                    self.auth = _authorization(challenge, self.credentials, url)
                    return self.call(method, url, data, **headers)
                if error.code == 404 and method == "HEAD":
                    return 404, error.headers
                if replayable and retry_after(f"{method} {url}", error.code, attempt):
                    continue
                raise (ServerError if error.code >= 500 else SandboxError)(
                    f"{method} {url}: HTTP {error.code}", "check the registry and the credentials"
                ) from None
            except NETWORK_ERRORS as error:
                if replayable and retry_network(f"{method} {url}", error, attempt):
                    continue
                raise unreachable(self.repository.name, error) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def blob(self, digest: str, size: int, content: IO[bytes]) -> None:
        base = self.repository.base_url
        if self.call("HEAD", f"{base}/blobs/{digest}")[0] == 200:
            return
        _, headers = self.call("POST", f"{base}/blobs/uploads/", b"")
        location = urllib.parse.urljoin(base + "/", headers.get("Location", ""))
        joiner = "&" if "?" in location else "?"
        self.call(
            "PUT",
            f"{location}{joiner}digest={digest}",
            content,
            **{"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )

    def manifest(self, reference: str, body: bytes, media_type: str) -> None:
        self.call(
            "PUT",
            f"{self.repository.base_url}/manifests/{reference}",
            body,
            **{"Content-Type": media_type},
        )


def push_layout(
    layout: Path,
    repository: Repository,
    credentials: Credentials | None = None,
    tag: str | None = None,
) -> str:
    """Upload an OCI layout tarball by digest, then tag it if asked; return the root's digest.

    This is ``push-by-digest`` for builders that lack it (buildx's docker driver):
    blobs first, then each manifest, the index last, all addressed by digest.
    The tag is written last with a plain PUT, never read first, so it also
    replaces a tag whose manifest the registry can no longer serve.
    """
    pusher = _Pusher(repository, credentials)
    with tarfile.open(layout) as tar:

        def read(digest: str) -> tuple[IO[bytes], int]:
            member = tar.getmember(f"blobs/{digest.replace(':', '/')}")
            handle = tar.extractfile(member)
            if handle is None:
                raise SandboxError(f"{layout}: blob {digest} is missing", "build the image again")
            return handle, member.size

        def upload(descriptor: dict[str, Any]) -> bytes:
            handle, _ = read(descriptor["digest"])
            body = handle.read()
            document = json.loads(body)
            if "manifests" in document:
                for child in document["manifests"]:
                    upload(child)
            else:
                for blob in [document["config"], *document.get("layers", [])]:
                    content, size = read(blob["digest"])
                    pusher.blob(blob["digest"], size, content)
            pusher.manifest(descriptor["digest"], body, descriptor["mediaType"])
            return body

        index_file = tar.extractfile("index.json")
        if index_file is None:
            raise SandboxError(f"{layout} is not an OCI layout", "build with --output type=oci")
        (root,) = json.load(index_file)["manifests"]
        body = upload(root)
        if tag:
            pusher.manifest(tag, body, root["mediaType"])
    return str(root["digest"])
