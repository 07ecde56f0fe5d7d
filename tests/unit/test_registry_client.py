"""The registry client against a registry in this process: auth, redirects, pages, retries.

No engine and no registry binary: ``MemoryRegistry`` (tests/memoryregistry.py)
speaks the distribution API on loopback, ``TokenIssuer`` signs its tokens,
``FaultProxy`` cuts a chosen request and plays a registry whose blobs live
elsewhere, ``BlobStore`` is that elsewhere. The same client against Debian's
docker-registry is tests/integration/test_registry_network.py. The retry's
waits are recorded instead of slept, so the backoff itself is checked.
"""

from __future__ import annotations

import json
import socket
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from conjure_sandbox import retry
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import (
    Credentials,
    Repository,
    ServerError,
    fetch_blob,
    fetch_manifest,
    fetch_manifest_bytes,
    list_tags,
    push_layout,
)
from conjure_sandbox.registry.auth import authorization
from tests.blobstore import BlobStore
from tests.faultproxy import Fault, FaultProxy
from tests.loopback import LoopbackServer
from tests.memoryregistry import MemoryRegistry
from tests.ocilayout import write_layout
from tests.tokenissuer import TokenIssuer

PATH = "holsee/conjure-sandbox"
USER, PASSWORD = "maint", "s3cret-password-for-the-test"
READER, READER_PASSWORD = "reader", "reader-password"
USERS = {USER: PASSWORD, READER: READER_PASSWORD}


def credentials(host: str, user: str = USER, password: str = PASSWORD) -> Credentials:
    """A user's credentials for the registry on ``host``."""
    return Credentials(user, password, host)


Server = TypeVar("Server", bound=LoopbackServer)


class Start(Protocol):
    """The ``start`` fixture: keeps a server to close after the test, and returns it."""

    def __call__(self, server: Server, /) -> Server: ...


@pytest.fixture
def start() -> Iterator[Start]:
    started: list[LoopbackServer] = []

    def keep(server: Server) -> Server:
        started.append(server)
        return server

    yield keep
    for server in started:
        server.close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry policy's waits, recorded rather than slept."""
    recorded: list[float] = []
    monkeypatch.setattr(retry, "time", types.SimpleNamespace(sleep=recorded.append))
    return recorded


def _registry(auth: str, start: Start, tmp_path: Path) -> MemoryRegistry:
    if auth == "basic":
        return start(MemoryRegistry(tmp_path / "storage", users=USERS))
    issuer = start(TokenIssuer(0, USERS, {USER}, tmp_path))
    return start(MemoryRegistry(tmp_path / "storage", issuer=issuer))


def _holding_an_image(start: Start, tmp_path: Path) -> tuple[MemoryRegistry, Repository, str]:
    """An open registry holding one image under 0.1.0: the registry, repository and digest."""
    registry = start(MemoryRegistry(tmp_path / "storage"))
    repository = Repository(registry.host, PATH)
    digest, _ = write_layout(tmp_path / "layout.tar")
    push_layout(tmp_path / "layout.tar", repository, tag="0.1.0")
    return registry, repository, digest


def _one_line(error: pytest.ExceptionInfo[SandboxError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_a_push_and_the_reads_answer_the_challenge(auth: str, start: Start, tmp_path: Path) -> None:
    registry = _registry(auth, start, tmp_path)
    repository = Repository(registry.host, PATH)
    digest, platforms = write_layout(tmp_path / "layout.tar", ("linux/amd64", "linux/arm64"))

    assert (
        push_layout(tmp_path / "layout.tar", repository, credentials(registry.host), tag="0.1.0")
        == digest
    )
    found = fetch_manifest(repository, "0.1.0", credentials(registry.host, READER, READER_PASSWORD))
    assert found is not None
    assert found.digest == digest
    assert dict(found.platforms) == platforms
    assert list_tags(repository, credentials(registry.host)) == ["0.1.0"]
    # Each request went first without credentials, then with the kind the challenge named.
    assert registry.seen[0].authorization == ""
    kinds = {seen.authorization for seen in registry.seen}
    assert kinds == {"", "basic" if auth == "basic" else "bearer"}


def test_a_token_is_earned_per_scope(start: Start, tmp_path: Path) -> None:
    issuer = start(TokenIssuer(0, USERS, {USER}, tmp_path))
    registry = start(MemoryRegistry(tmp_path / "storage", issuer=issuer))
    write_layout(tmp_path / "layout.tar")
    push_layout(
        tmp_path / "layout.tar",
        Repository(registry.host, PATH),
        credentials(registry.host),
        tag="0.1.0",
    )
    # The blob HEAD earned a pull token; the upload needed a second, for pull and push.
    assert issuer.scopes_granted[:2] == [f"{USER}:{PATH}:pull", f"{USER}:{PATH}:pull,push"]


def test_a_user_who_may_only_pull_cannot_push_and_nothing_is_tagged(
    start: Start, tmp_path: Path
) -> None:
    registry = _registry("token", start, tmp_path)
    write_layout(tmp_path / "layout.tar")
    reader = credentials(registry.host, READER, READER_PASSWORD)
    with pytest.raises(SandboxError) as refused:
        push_layout(tmp_path / "layout.tar", Repository(registry.host, PATH), reader, tag="0.1.0")
    assert "HTTP 401" in _one_line(refused)
    assert registry.tags == {}


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (None, "needs credentials"),
        ("wrong", "failed (HTTP 401)"),
    ],
)
def test_basic_auth_without_the_right_credentials_is_one_line(
    password: str | None,
    expected: str,
    start: Start,
    tmp_path: Path,
) -> None:
    registry = _registry("basic", start, tmp_path)
    given = credentials(registry.host, USER, password) if password else None
    with pytest.raises(SandboxError) as refused:
        list_tags(Repository(registry.host, PATH), given)
    assert expected in _one_line(refused)
    assert PASSWORD not in str(refused.value)


def test_a_token_service_that_refuses_the_password_is_one_line(
    start: Start, tmp_path: Path
) -> None:
    registry = _registry("token", start, tmp_path)
    with pytest.raises(SandboxError) as refused:
        list_tags(Repository(registry.host, PATH), credentials(registry.host, USER, "wrong"))
    assert "the token service" in _one_line(refused)
    assert "refused" in str(refused.value)


def test_a_token_realm_over_plain_http_off_loopback_gets_no_password() -> None:
    challenge = 'Bearer realm="http://auth.example.com/token",service="registry"'
    with pytest.raises(SandboxError, match="not https") as refused:
        authorization(
            challenge,
            credentials("registry.example.com"),
            "https://registry.example.com/v2/holsee/conjure-sandbox/tags/list",
            Repository("registry.example.com", PATH),
        )
    _one_line(refused)


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_a_blob_redirected_to_another_host_goes_there_without_the_credentials(
    auth: str, start: Start, tmp_path: Path
) -> None:
    registry = _registry(auth, start, tmp_path)
    write_layout(tmp_path / "layout.tar")
    push_layout(
        tmp_path / "layout.tar",
        Repository(registry.host, PATH),
        credentials(registry.host),
        tag="0.1.0",
    )
    store = start(BlobStore(0, tmp_path / "storage"))
    front = start(FaultProxy(0, registry.host, blob_host=store.host))
    repository = Repository(front.host, PATH)
    mine = credentials(front.host)
    manifest = json.loads(fetch_manifest_bytes(repository, "0.1.0", mine))
    layer = manifest["layers"][0]["digest"]

    assert fetch_blob(repository, layer, mine).startswith(b" linux")
    assert store.requests, "the blob read was never redirected: the test proves nothing"
    assert any(seen.authorization for seen in registry.seen if layer in seen.path)
    sent = json.dumps(store.requests)
    assert "authorization" not in sent.lower(), sent
    assert PASSWORD not in sent


def test_tags_are_read_page_after_page(start: Start, tmp_path: Path) -> None:
    registry = start(MemoryRegistry(tmp_path / "storage"))
    repository = Repository(registry.host, PATH)
    write_layout(tmp_path / "layout.tar")
    tags = ["0.1.0", "0.1.1", "0.2.0", "0.2.0-minimal", "edge"]
    for tag in tags:
        push_layout(tmp_path / "layout.tar", repository, tag=tag)

    assert list_tags(repository, page=2) == tags
    pages = [seen.path for seen in registry.seen if "/tags/list" in seen.path]
    assert pages == [
        f"/v2/{PATH}/tags/list?n=2",
        f"/v2/{PATH}/tags/list?n=2&last=0.1.1",
        f"/v2/{PATH}/tags/list?n=2&last=0.2.0-minimal",
    ]


def test_a_repository_that_does_not_exist_has_no_tags(start: Start, tmp_path: Path) -> None:
    registry = start(MemoryRegistry(tmp_path / "storage"))
    assert list_tags(Repository(registry.host, "holsee/nothing-here")) == []
    assert fetch_manifest(Repository(registry.host, "holsee/nothing-here"), "0.1.0") is None


def test_a_manifest_whose_bytes_do_not_match_its_digest_is_refused(
    start: Start, tmp_path: Path
) -> None:
    registry, repository, digest = _holding_an_image(start, tmp_path)
    media_type, _ = registry.manifests[f"{PATH}@{digest}"]
    registry.manifests[f"{PATH}@{digest}"] = (media_type, b'{"tampered": true}')
    with pytest.raises(SandboxError) as refused:
        fetch_manifest_bytes(repository, digest)
    assert "is corrupt" in _one_line(refused)


@pytest.mark.parametrize("action", ["500", "drop"])
def test_a_read_that_fails_once_is_retried_after_the_policy_s_wait(
    action: str,
    start: Start,
    tmp_path: Path,
    waits: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, _, digest = _holding_an_image(start, tmp_path)
    proxy = start(FaultProxy(0, registry.host, Fault("GET", r"/manifests/0\.1\.0$", 1, action)))

    found = fetch_manifest(Repository(proxy.host, PATH), "0.1.0")
    assert found is not None
    assert found.digest == digest
    assert proxy.fired
    assert waits == [retry.REGISTRY.delay]
    assert "retry 1 of 2" in capsys.readouterr().err


def test_an_upload_cut_once_is_sent_again_and_the_push_completes(
    start: Start, tmp_path: Path, waits: list[float]
) -> None:
    registry = start(MemoryRegistry(tmp_path / "storage"))
    proxy = start(FaultProxy(0, registry.host, Fault("PUT", r"/blobs/uploads/", 1, "drop")))
    digest, _ = write_layout(tmp_path / "layout.tar")
    assert push_layout(tmp_path / "layout.tar", Repository(proxy.host, PATH), tag="0.1.0") == digest
    assert proxy.fired
    assert registry.tags[PATH]["0.1.0"] == digest
    assert waits == [retry.REGISTRY.delay]


def test_a_registry_gone_mid_upload_is_one_line_after_every_try_and_nothing_is_tagged(
    start: Start, tmp_path: Path, waits: list[float]
) -> None:
    registry = start(MemoryRegistry(tmp_path / "storage"))
    fault = Fault("PUT", r"/blobs/uploads/", 1, "drop", down=True)
    proxy = start(FaultProxy(0, registry.host, fault))
    write_layout(tmp_path / "layout.tar")
    with pytest.raises(SandboxError) as failed:
        push_layout(tmp_path / "layout.tar", Repository(proxy.host, PATH), tag="0.1.0")
    assert f"registry unreachable after {retry.REGISTRY.tries} tries" in _one_line(failed)
    # Twice the wait each time, as many times as the policy allows.
    assert waits == [retry.REGISTRY.delay * 2**n for n in range(retry.REGISTRY.retries)]
    assert registry.tags == {}


def test_a_registry_that_keeps_answering_5xx_is_a_server_error_after_every_try(
    start: Start, tmp_path: Path, waits: list[float]
) -> None:
    registry = start(MemoryRegistry(tmp_path / "storage"))
    proxy = start(FaultProxy(0, registry.host, Fault("GET", r"/tags/list", 1, "500", down=True)))
    with pytest.raises(ServerError) as failed:
        list_tags(Repository(proxy.host, PATH))
    assert "GET tags/list?n=1000 failed (HTTP 500)" in _one_line(failed)
    assert len(waits) == retry.REGISTRY.retries


def test_nothing_listening_is_one_line_naming_the_registry(
    waits: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    # A bound socket that never listens refuses every connection, on every run.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(SandboxError) as failed:
            list_tags(Repository(host, PATH))
    message = _one_line(failed)
    assert message.startswith(f"{host}/{PATH}: registry unreachable after 3 tries")
    assert "Connection refused" in message
    assert len(waits) == retry.REGISTRY.retries
    assert "retry 2 of 2" in capsys.readouterr().err


def test_an_answer_that_is_not_json_is_one_line(start: Start, tmp_path: Path) -> None:
    registry, repository, digest = _holding_an_image(start, tmp_path)
    registry.manifests[f"{PATH}@{digest}"] = ("text/html", b"<html>a login page</html>")
    with pytest.raises(SandboxError) as refused:
        fetch_manifest(repository, "0.1.0")
    assert "the manifest of 0.1.0 is not a JSON object" in _one_line(refused)
