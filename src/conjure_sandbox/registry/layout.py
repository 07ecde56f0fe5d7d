"""Uploading an OCI layout (a tarball) to a registry: blobs, then manifests by digest,
the tag last."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path
from typing import IO, Any

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.ocilayout import OciLayout
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
                with urlopen(request, timeout=600) as response:
                    response.read()
                    return int(response.status), response.headers
            except urllib.error.HTTPError as error:
                challenge = error.headers.get("WWW-Authenticate", "")
                if error.code == 401 and challenge not in self.answered:
                    # A token is earned per scope: the pull token of a HEAD does not push.
                    self.answered.add(challenge)
                    self.auth = authorization(challenge, self.credentials, url)
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
    with OciLayout(layout) as oci:

        def upload(descriptor: dict[str, Any]) -> bytes:
            body = oci.blob(descriptor["digest"])
            document = json.loads(body)
            if "manifests" in document:
                for child in document["manifests"]:
                    upload(child)
            else:
                for blob in [document["config"], *document.get("layers", [])]:
                    content, size = oci.stream(blob["digest"])
                    pusher.blob(blob["digest"], size, content)
            pusher.manifest(descriptor["digest"], body, descriptor["mediaType"])
            return body

        root = oci.root()
        body = upload(root)
        if tag:
            pusher.manifest(tag, body, root["mediaType"])
    return str(root["digest"])
