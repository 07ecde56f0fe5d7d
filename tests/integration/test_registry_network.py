"""Credentials stay with their registry, and network failures end in one line.

Real registries on loopback (Debian's docker-registry, with basic and with
token auth), a front that redirects blob reads to a second loopback server
standing in for a CDN, and the fault proxy cutting a chosen request.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import (
    Credentials,
    Repository,
    fetch_blob,
    fetch_manifest,
    list_tags,
    push_layout,
)
from conjure_sandbox.registry.layout import _Pusher
from tests.blobstore import BlobStore
from tests.faultproxy import Fault, FaultProxy
from tests.integration.conftest import Registry
from tests.ocilayout import write_layout
from tests.tokenissuer import TokenIssuer

pytestmark = pytest.mark.registry

PATH = "holsee/conjure-sandbox"
USER, PASSWORD = "maint", "s3cret-password-for-the-test"


@pytest.fixture
def servers() -> Iterator[list[BlobStore | FaultProxy | TokenIssuer]]:
    started: list[BlobStore | FaultProxy | TokenIssuer] = []
    yield started
    for server in started:
        server.close()


def _registry(
    auth: str, make_registry: Callable[..., Registry], servers: list[object], tmp_path: Path
) -> tuple[Registry, TokenIssuer | None]:
    if auth == "basic":
        return make_registry(5040, users={USER: PASSWORD}), None
    issuer = TokenIssuer(5041, {USER: PASSWORD}, {USER}, tmp_path)
    servers.append(issuer)
    return make_registry(5042, auth=issuer.registry_auth()), issuer


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_a_blob_redirect_to_another_host_never_carries_the_credentials(
    auth: str,
    make_registry: Callable[..., Registry],
    servers: list[BlobStore | FaultProxy | TokenIssuer],
    tmp_path: Path,
) -> None:
    registry, _ = _registry(auth, make_registry, servers, tmp_path)
    credentials = Credentials(USER, PASSWORD, registry.host)
    data = b"a blob the registry keeps in storage elsewhere\n" * 100
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _Pusher(Repository(registry.host, PATH), credentials).blob(digest, len(data), io.BytesIO(data))

    store = BlobStore(5043, registry.root / "data")
    front = FaultProxy(5044, registry.host, blob_host=store.host)
    servers += [store, front]

    # Read through the proxy, which is the registry as the client sees it: its credentials.
    through = Credentials(USER, PASSWORD, front.host)
    assert fetch_blob(Repository(front.host, PATH), digest, through) == data
    assert store.requests, "the blob read was never redirected: the test proves nothing"
    seen = json.dumps(store.requests)
    assert "authorization" not in seen.lower(), seen
    assert PASSWORD not in seen


def test_a_reset_mid_upload_is_retried_and_the_push_completes(
    make_registry: Callable[..., Registry],
    servers: list[BlobStore | FaultProxy | TokenIssuer],
    tmp_path: Path,
) -> None:
    registry = make_registry(5045)
    proxy = FaultProxy(5046, registry.host, Fault("PUT", r"/blobs/uploads/", 1, "drop"))
    servers.append(proxy)
    layout = tmp_path / "layout.tar"
    digest, _ = write_layout(layout)
    assert push_layout(layout, Repository(proxy.host, PATH), tag="0.1.0") == digest
    assert proxy.fired
    found = fetch_manifest(Repository(registry.host, PATH), "0.1.0")
    assert found is not None
    assert found.digest == digest


def test_a_registry_gone_mid_upload_is_one_line_and_nothing_is_tagged(
    make_registry: Callable[..., Registry],
    servers: list[BlobStore | FaultProxy | TokenIssuer],
    tmp_path: Path,
) -> None:
    registry = make_registry(5047)
    proxy = FaultProxy(5048, registry.host, Fault("PUT", r"/blobs/uploads/", 1, "drop", down=True))
    servers.append(proxy)
    layout = tmp_path / "layout.tar"
    digest, _ = write_layout(layout)
    with pytest.raises(SandboxError) as failed:
        push_layout(layout, Repository(proxy.host, PATH), tag="0.1.0")
    assert proxy.fired
    assert "registry unreachable after 3 tries" in str(failed.value)
    assert "\n" not in str(failed.value)
    direct = Repository(registry.host, PATH)
    assert list_tags(direct) == []
    assert fetch_manifest(direct, digest) is None
