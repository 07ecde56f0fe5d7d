"""A small distribution-API registry in this process, for unit tests of the registry client.

The integration tests speak to Debian's docker-registry; this one needs no
binary and no engine, so the client's protocol handling (auth challenges,
uploads, tag pagination, redirects through ``FaultProxy``, retries) is
unit-tested on every run. It keeps to what the distribution spec says and
docker-registry does, and no further:

- ``/v2/`` and every repository path answer 401 with a challenge until the
  request carries basic credentials of a known user, or a bearer token that
  ``TokenIssuer`` signed for this repository and action (pull for reads,
  push for writes), checked against the issuer's key;
- blobs are stored by digest, checked on upload, under ``root`` in
  docker-registry's own layout (so ``BlobStore`` serves them as a CDN would);
- manifests are stored by digest and by tag, and served with their media type;
- ``tags/list`` honours ``n`` and ``last`` and names the next page in ``Link``.

Every request is recorded (method, path, which authorization it carried) for
the tests to read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt

from tests.blobstore import stored_blob
from tests.loopback import LoopbackServer, QuietHandler
from tests.tokenissuer import ISSUER, SERVICE, TokenIssuer

_ROUTE = re.compile(r"/v2/(?P<name>.+?)/(?P<kind>blobs/uploads|blobs|manifests|tags)/?(?P<rest>.*)")


@dataclass(frozen=True)
class Seen:
    """One request as the registry got it."""

    method: str
    path: str
    authorization: str  # "", "basic" or "bearer"


class MemoryRegistry(LoopbackServer):
    """Listens on ``127.0.0.1:port`` (0: a free one); ``users`` turns on basic auth, ``issuer``
    token auth, neither: anyone may read and write."""

    def __init__(
        self,
        root: Path,
        port: int = 0,
        users: Mapping[str, str] | None = None,
        issuer: TokenIssuer | None = None,
    ) -> None:
        self.root, self.users, self.issuer = root, dict(users or {}), issuer
        self.manifests: dict[str, tuple[str, bytes]] = {}  # "<name>@<digest>": type, bytes
        self.tags: dict[str, dict[str, str]] = {}  # name: tag: digest
        self.uploads: set[str] = set()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        registry = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def reply(
                self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                header = self.headers.get("Authorization", "")
                with registry.lock:
                    registry.seen.append(
                        Seen(self.command, self.path, header.split(" ")[0].lower())
                    )
                split = urllib.parse.urlsplit(self.path)
                route = _ROUTE.fullmatch(split.path)
                name = route["name"] if route else ""
                action = "pull" if self.command in ("GET", "HEAD") else "pull,push"
                challenge = registry.challenge(name, action)
                if challenge and not registry.allows(header, name, action):
                    self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', challenge)
                    return
                if split.path == "/v2/":
                    self.reply(200, b"{}")
                    return
                if route is None:
                    self.reply(404)
                    return
                query = urllib.parse.parse_qs(split.query)
                status, answer, headers = registry.serve(
                    self.command, route["kind"], name, route["rest"], query, body
                )
                self.reply(status, answer, headers)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

        super().__init__(port, Handler)

    # -- auth ---------------------------------------------------------------------------

    def challenge(self, name: str, action: str) -> dict[str, str]:
        """The ``WWW-Authenticate`` a request without the right authorization gets; {} when
        the registry is open."""
        if self.issuer is not None:
            scope = f',scope="repository:{name}:{action}"' if name else ""
            realm = f'Bearer realm="{self.issuer.realm}",service="{SERVICE}"{scope}'
            return {"WWW-Authenticate": realm}
        if self.users:
            return {"WWW-Authenticate": 'Basic realm="memory-registry"'}
        return {}

    def allows(self, header: str, name: str, action: str) -> bool:
        kind, _, value = header.partition(" ")
        if self.issuer is None:
            if kind.lower() != "basic":
                return False
            user, _, password = base64.b64decode(value).decode().partition(":")
            return self.users.get(user) == password
        if kind.lower() != "bearer":
            return False
        try:
            claims = jwt.decode(
                value,
                self.issuer.key.public_key(),
                algorithms=["RS256"],
                audience=SERVICE,
                issuer=ISSUER,
            )
        except jwt.PyJWTError:
            return False
        if not name:
            return True
        granted = {
            act
            for entry in claims.get("access", ())
            if entry.get("type") == "repository" and entry.get("name") == name
            for act in entry.get("actions", ())
        }
        return set(action.split(",")) <= granted

    # -- storage ------------------------------------------------------------------------

    def serve(
        self,
        method: str,
        kind: str,
        name: str,
        rest: str,
        query: Mapping[str, list[str]],
        body: bytes,
    ) -> tuple[int, bytes, dict[str, str]]:
        """Status, body and headers for an authorized request below ``/v2/<name>/``."""
        if kind == "blobs/uploads":
            return self.upload(method, name, rest, query, body)
        if kind == "blobs":
            path = stored_blob(self.root, rest)
            if method not in ("GET", "HEAD") or not re.fullmatch(r"sha256:[0-9a-f]{64}", rest):
                return 405, b"", {}
            if not path.is_file():
                return 404, b"", {}
            return 200, path.read_bytes(), {"Docker-Content-Digest": rest}
        if kind == "manifests":
            return self.manifest(method, name, rest, body)
        if kind == "tags" and rest == "list" and method == "GET":
            return self.tag_page(name, query)
        return 404, b"", {}

    def upload(
        self, method: str, name: str, session: str, query: Mapping[str, list[str]], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        if method == "POST" and not session:
            session = uuid.uuid4().hex
            with self.lock:
                self.uploads.add(session)
            return 202, b"", {"Location": f"/v2/{name}/blobs/uploads/{session}"}
        digest = query.get("digest", [""])[0]
        if method != "PUT" or session not in self.uploads:
            return 404, b"", {}
        if digest != "sha256:" + hashlib.sha256(body).hexdigest():
            return 400, b'{"errors":[{"code":"DIGEST_INVALID"}]}', {}
        path = stored_blob(self.root, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        with self.lock:
            self.uploads.discard(session)
        return 201, b"", {"Location": f"/v2/{name}/blobs/{digest}"}

    def manifest(
        self, method: str, name: str, reference: str, body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            if method == "PUT":
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                if reference.startswith("sha256:") and reference != digest:
                    return 400, b'{"errors":[{"code":"DIGEST_INVALID"}]}', {}
                media_type = json.loads(body).get("mediaType", "")
                self.manifests[f"{name}@{digest}"] = (media_type, body)
                if not reference.startswith("sha256:"):
                    self.tags.setdefault(name, {})[reference] = digest
                return 201, b"", {"Docker-Content-Digest": digest}
            if method not in ("GET", "HEAD"):
                return 405, b"", {}
            digest = self.tags.get(name, {}).get(reference, reference)
            found = self.manifests.get(f"{name}@{digest}")
        if found is None:
            return 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', {}
        media_type, stored = found
        return 200, stored, {"Content-Type": media_type, "Docker-Content-Digest": digest}

    def tag_page(
        self, name: str, query: Mapping[str, list[str]]
    ) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            if name not in self.tags:
                return 404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', {}
            tags = sorted(self.tags[name])
        last = query.get("last", [""])[0]
        count = int(query.get("n", [str(len(tags) or 1)])[0])
        after = [tag for tag in tags if tag > last]
        page = after[:count]
        headers = {"Content-Type": "application/json"}
        if len(after) > count:
            following = urllib.parse.urlencode({"n": count, "last": page[-1]})
            headers["Link"] = f'</v2/{name}/tags/list?{following}>; rel="next"'
        return 200, json.dumps({"name": name, "tags": page}).encode(), headers
