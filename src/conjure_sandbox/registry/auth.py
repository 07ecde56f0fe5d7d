"""Credentials, and how a request earns its ``Authorization``.

Basic auth, or a bearer token earned per scope from the realm a 401 names.
Credentials belong to one registry host, and go nowhere else: a challenge is
answered only when the registry's own origin (scheme, host, port) asked, a
repository on another host is read anonymously, a redirect off the origin
drops ``Authorization`` (``transport``), and a token realm must be https,
or plain http only when the registry itself is on loopback."""

from __future__ import annotations

import base64
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

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import documents
from conjure_sandbox.registry.failures import NETWORK_ERRORS, bounded_error, network_reason
from conjure_sandbox.registry.reference import LOOPBACK_HOSTS, Repository, parse_repository
from conjure_sandbox.registry.transport import Overdue, Oversize, exchange, origin


@dataclass(frozen=True)
class Credentials:
    """A user's password for one registry: ``home``, its ``host[:port]``."""

    username: str
    password: str
    home: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def for_host(self, host: str) -> Credentials | None:
        """These credentials if ``host`` is their registry; None (anonymous) anywhere else."""
        return self if host == self.home else None


def credentials_from_env(
    publish_to: str, environ: Mapping[str, str] | None = None, stdin: bool = False
) -> Credentials | None:
    """CONJURE_REGISTRY_USER with CONJURE_REGISTRY_PASSWORD (or the password on stdin): the
    credentials of the registry that ``publish_to`` (``Settings.image``) is on, and of no other."""
    home = parse_repository(publish_to).host
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
    return Credentials(user, password, home)


def _loopback(url: str) -> bool:
    return origin(url)[1] in LOOPBACK_HOSTS


def _check_realm(realm: str, repository: Repository) -> None:
    """A token realm gets the user's password: https only, or http when both it and the
    registry are on loopback."""
    parts = urllib.parse.urlsplit(realm)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _loopback(realm) and _loopback(repository.base_url):
        return
    raise SandboxError(
        f"{repository.name} sends its credentials to the token realm {realm[:120]!r}, "
        "which is not https",
        "use a registry whose token service is https (plain http only on loopback)",
    )


def authorization(
    challenge: str, credentials: Credentials | None, answered_by: str, repository: Repository
) -> str:
    """The Authorization header the 401 from ``answered_by`` asks for: basic, or a bearer
    token. Only ``repository``'s own origin is answered, and only with its own credentials."""
    if origin(answered_by) != origin(repository.base_url):
        raise SandboxError(
            f"{repository.name}: {origin(answered_by)[1] or answered_by[:80]} asked for "
            "credentials after a redirect; only the registry itself is answered",
            "make the registry's storage serve its redirects without authentication",
        )
    credentials = credentials.for_host(repository.host) if credentials else None
    if challenge.lower().startswith("basic"):
        if credentials is None:
            raise SandboxError(
                f"{repository.name} needs credentials",
                "set CONJURE_REGISTRY_USER and CONJURE_REGISTRY_PASSWORD",
            )
        return credentials.basic()
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = fields.get("realm", "")
    _check_realm(realm, repository)
    query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
    token_request = urllib.request.Request(f"{realm}?{query}")
    if credentials:
        token_request.add_header("Authorization", credentials.basic())
    where = f"the token service {realm[:120]}"
    try:
        body, _ = exchange(token_request)
    except urllib.error.HTTPError as error:
        raise SandboxError(
            f"{where} refused {fields.get('scope', 'access')[:120]} (HTTP {error.code})",
            "check CONJURE_REGISTRY_USER / CONJURE_REGISTRY_PASSWORD and the token's scopes",
        ) from None
    except (Overdue, Oversize) as error:
        raise bounded_error(where, error) from None
    except NETWORK_ERRORS as error:  # refused, reset, timed out, or an answer cut short
        raise SandboxError(
            f"{where} did not answer ({network_reason(error)})",
            "check the registry's auth and the network, then run again",
        ) from None
    return "Bearer " + documents.token(documents.parse_object(body, where), where)


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
    (no credentials given, or given for another registry) keeps an existing login.
    """
    credentials = credentials.for_host(registry) if credentials else None
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
