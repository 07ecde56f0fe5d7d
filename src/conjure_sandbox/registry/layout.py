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
from conjure_sandbox.registry.auth import Credentials, authorization
from conjure_sandbox.registry.failures import (
    NETWORK_ERRORS,
    ServerError,
    bounded_error,
    retry_after,
    retry_network,
    unreachable,
)
from conjure_sandbox.registry.reference import Repository
from conjure_sandbox.registry.transport import Overdue, Oversize, exchange, origin
from conjure_sandbox.retry import REGISTRY


class _Pusher:
    """Blob and manifest uploads to one repository, keeping the authorization it earned.

    The authorization goes only to the registry's own origin: an upload session
    whose ``Location`` names another host gets the upload without it."""

    def __init__(self, repository: Repository, credentials: Credentials | None) -> None:
        self.repository, self.credentials = repository, credentials
        self.home = origin(repository.base_url)
        self.auth: str | None = None
        self.answered: set[str] = set()  # challenges already answered with a token

    def call(
        self, method: str, url: str, data: bytes | IO[bytes] | None = None, **headers: str
    ) -> Message | None:
        """The answer's headers; None for a HEAD answered 404."""
        stream = None if data is None or isinstance(data, bytes) else data
        # An upload session's URL carries its state token: messages show it without the query.
        shown = url.split("?", 1)[0]
        replayable = stream is None or stream.seekable()  # a retry must send the body again
        for attempt in range(REGISTRY.tries):
            if stream is not None and replayable:
                stream.seek(0)
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            if self.auth and origin(url) == self.home:
                request.add_header("Authorization", self.auth)
            try:
                return exchange(request, blob=stream is not None)[1]
            except (Overdue, Oversize) as error:
                raise bounded_error(f"{method} {shown}", error) from None
            except urllib.error.HTTPError as error:
                challenge = error.headers.get("WWW-Authenticate", "")
                if error.code == 401 and challenge not in self.answered:
                    # A token is earned per scope: the pull token of a HEAD does not push.
                    self.answered.add(challenge)
                    self.auth = authorization(
                        challenge, self.credentials, error.geturl(), self.repository
                    )
                    return self.call(method, url, data, **headers)
                if error.code == 404 and method == "HEAD":
                    return None
                if replayable and retry_after(f"{method} {shown}", error.code, attempt):
                    continue
                raise (ServerError if error.code >= 500 else SandboxError)(
                    f"{method} {shown}: HTTP {error.code}", "check the registry and the credentials"
                ) from None
            except NETWORK_ERRORS as error:
                if replayable and retry_network(f"{method} {shown}", error, attempt):
                    continue
                raise unreachable(self.repository.name, error) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def blob(self, digest: str, size: int, content: IO[bytes]) -> None:
        base = self.repository.base_url
        if self.call("HEAD", f"{base}/blobs/{digest}") is not None:
            return
        headers = self.call("POST", f"{base}/blobs/uploads/", b"") or Message()
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
