"""A bearer-token service for a test registry configured with ``auth: token``, as GHCR works.

It signs RS256 JWTs with a key whose self-signed certificate is the
registry's ``rootcertbundle`` (the certificate rides in the token's ``x5c``
header). A client proves its user with basic auth on GET, or with an OAuth2
password grant on POST (containerd's way), and gets exactly the scopes it
asked for that its user may have: ``pull`` for everyone known, ``push`` only
for users listed as pushers. Tokens come back as ``access_token`` only, which
the distribution spec allows and a client must accept.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.loopback import LoopbackServer, QuietHandler

SERVICE = "conjure-test-registry"
ISSUER = "conjure-test-issuer"


class TokenIssuer(LoopbackServer):
    def __init__(
        self, port: int, users: Mapping[str, str], pushers: set[str], directory: Path
    ) -> None:
        self.users, self.pushers = dict(users), set(pushers)
        self.scopes_granted: list[str] = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.certificate = directory / "token-issuer.pem"
        self.certificate.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        issuer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = issuer.basic_user(self.headers.get("Authorization", ""))
                self.answer(user, query.get("scope", []))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                name = form.get("username", [""])[0]
                password = form.get("password", [""])[0]
                user = name if issuer.users.get(name) == password and name else None
                scopes = " ".join(form.get("scope", [])).split()
                self.answer(user, scopes)

            def answer(self, user: str | None, scopes: list[str]) -> None:
                if user is None and self.headers.get("Authorization"):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"access_token": issuer.token(user, scopes)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the client gave up on it
                    self.wfile.write(body)

        super().__init__(port, Handler)
        self.realm = f"http://{self.host}/token"

    def basic_user(self, header: str) -> str | None:
        if not header.lower().startswith("basic "):
            return None
        name, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        return name if self.users.get(name) == password else None

    def token(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = {"pull", "push"} if user in self.pushers else {"pull"} if user else set()
            granted = sorted(set(actions.split(",")) & allowed)
            if kind == "repository" and granted:
                access.append({"type": kind, "name": name, "actions": granted})
                self.scopes_granted.append(f"{user}:{name}:{','.join(granted)}")
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        headers = {"x5c": [base64.b64encode(der).decode()]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)

    def registry_auth(self) -> str:
        """The ``auth:`` section of the registry's config.yml."""
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.certificate}\n"
        )
