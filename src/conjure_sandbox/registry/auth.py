"""Credentials, and how a request earns its ``Authorization``.

Basic auth, or a bearer token earned per scope from the realm a 401 names.
Credentials stay with their host: a redirect to another host (GHCR's blob CDN,
an S3-backed registry's storage) is followed without ``Authorization``, as
requests' ``rebuild_auth`` does, and a token realm must be https unless it is on
loopback."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry.failures import network_reason
from conjure_sandbox.registry.reference import LOOPBACK_HOSTS


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


def urlopen(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
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


def authorization(challenge: str, credentials: Credentials | None, url: str) -> str:
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
        with urlopen(token_request, timeout=30) as response:
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


_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


@contextmanager
def client_config(
    credentials: Credentials | None, registry: str, log: Callable[[str], None] = print
) -> Iterator[str | None]:
    """A throwaway docker client config holding one registry's credentials, removed afterwards.

    It is written the way ``docker login`` writes it (base64 ``user:password``
    under ``auths``) but without the CLI, whose "stored unencrypted" warning
    and "Login Succeeded" would only describe this temporary file. The
    credentials were already checked against the registry by then (the
    version check lists its tags with them). Leaving ``DOCKER_CONFIG`` alone
    (no credentials given) keeps an existing login.
    """
    if credentials is None:
        yield None
        return
    auth = credentials.basic().split(" ", 1)[1]
    # Docker Hub's credentials live under its v1 index URL, every other registry's under its host.
    key = "https://index.docker.io/v1/" if registry in _DOCKER_HUB else registry
    with tempfile.TemporaryDirectory(prefix="conjure-login-") as directory:
        config = Path(directory) / "config.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps({"auths": {key: {"auth": auth}}}))
        log(f"pushing as {credentials.username} through a temporary client config (deleted after)")
        yield directory
