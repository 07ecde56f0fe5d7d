"""The registry client against registries that misbehave on purpose (issue #32's findings).

``HostileRegistry`` (tests/hostileregistry.py) answers each request as the test
scripts it: huge answers made on the fly, answers that trickle a byte at a
time, pages that link back, documents of the wrong shape, redirects and upload
sessions on other hosts. Each test is one finding; each fails with its fix
reverted. Deadlines are shortened here (one second) so a trickle ends fast.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import (
    Credentials,
    Repository,
    client,
    fetch_blob,
    fetch_document,
    fetch_manifest,
    list_tags,
    parse_repository,
    push_layout,
    transport,
)
from conjure_sandbox.registry.auth import authorization, client_config
from conjure_sandbox.registry.reference import DIGEST, digest_in, digest_of, split_digest_ref
from tests.hostileregistry import Answer, HostileRegistry, Script
from tests.ocilayout import write_layout

PATH = "holsee/conjure-sandbox"
USER, PASSWORD = "maint", "s3cret-password-for-the-test"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def hostile() -> Iterator[list[HostileRegistry]]:
    started: list[HostileRegistry] = []
    yield started
    for server in started:
        server.close()


def _serve(started: list[HostileRegistry], script: Script) -> HostileRegistry:
    server = HostileRegistry(script)
    started.append(server)
    return server


def _one_line(refused: pytest.ExceptionInfo[SandboxError]) -> str:
    message = str(refused.value)
    assert "\n" not in message
    assert PASSWORD not in message
    return message


def _document(body: object, media_type: str = INDEX) -> Answer:
    return Answer(200, {"Content-Type": media_type}, json.dumps(body).encode())


# -- bounded reads ---------------------------------------------------------------------


def test_a_huge_manifest_is_refused_without_being_held(hostile: list[HostileRegistry]) -> None:
    # 400 MiB of JSON-looking bytes, made on the fly.
    server = _serve(hostile, lambda method, path: Answer(200, {}, b"[" * 65536, repeat=6400))
    tracemalloc.start()
    try:
        with pytest.raises(SandboxError) as refused:
            fetch_manifest(Repository(server.host, PATH), "0.1.0")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "over 4 MiB" in _one_line(refused)
    assert peak < 16 * transport.MiB, peak
    # The client hung up after the cap: far less than the 400 MiB was ever sent.
    assert server.sent < 64 * transport.MiB, server.sent


@pytest.mark.parametrize("where", ["headers", "body"])
def test_an_answer_that_trickles_ends_at_the_deadline(
    where: str, hostile: list[HostileRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "DOCUMENT_DEADLINE", 1.0)
    # Each byte arrives well within the per-read timeout; the whole never does in time.
    body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    server = _serve(hostile, lambda method, path: Answer(200, {}, body, drip=0.1, drip_in=where))
    started = time.monotonic()
    with pytest.raises(SandboxError) as refused:
        fetch_manifest(Repository(server.host, PATH), "0.1.0")
    assert "no whole answer within the request's deadline" in _one_line(refused)
    assert time.monotonic() - started < 5
    assert len(server.seen) == 1, "a deadline is not a passing failure: no retry"


def test_a_tag_list_whose_next_page_is_itself_ends(hostile: list[HostileRegistry]) -> None:
    def script(method: str, path: str) -> Answer:
        link = f'</v2/{PATH}/tags/list?n=1000>; rel="next"'
        return Answer(200, {"Link": link}, json.dumps({"tags": ["0.1.0"]}).encode())

    server = _serve(hostile, script)
    with pytest.raises(SandboxError) as refused:
        list_tags(Repository(server.host, PATH))
    assert "links back to one already read" in _one_line(refused)
    assert len(server.seen) == 1


def test_a_tag_list_without_end_stops_after_its_page_limit(
    hostile: list[HostileRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "MAX_TAG_PAGES", 5)

    def script(method: str, path: str) -> Answer:
        following = len(server.seen) + 1
        link = f'</v2/{PATH}/tags/list?n=1&last={following}>; rel="next"'
        return Answer(200, {"Link": link}, json.dumps({"tags": [str(following)]}).encode())

    server = _serve(hostile, script)
    with pytest.raises(SandboxError) as refused:
        list_tags(Repository(server.host, PATH))
    assert "past 5 pages (too many)" in _one_line(refused)
    assert len(server.seen) == 5


# -- digests ---------------------------------------------------------------------------


def test_a_manifest_asked_for_by_digest_must_have_that_digest(
    hostile: list[HostileRegistry],
) -> None:
    asked = digest_of(b'{"the": "document the record names"}')
    server = _serve(hostile, lambda method, path: _document({"schemaVersion": 2, "manifests": []}))
    # resume, pin and publish read through fetch_manifest; sbom and verify through the others.
    for read in (fetch_manifest, fetch_document):
        with pytest.raises(SandboxError) as refused:
            read(Repository(server.host, PATH), asked)
        assert "is corrupt" in _one_line(refused)


def test_an_index_entry_that_is_not_a_digest_never_reaches_a_url(
    hostile: list[HostileRegistry],
) -> None:
    entry = {"mediaType": MANIFEST, "digest": "../../../other/manifests/latest", "size": 2}
    server = _serve(hostile, lambda method, path: _document({"manifests": [entry]}))
    with pytest.raises(SandboxError) as refused:
        fetch_manifest(Repository(server.host, PATH), "0.1.0")
    assert "manifests[0].digest is not a sha256 digest" in _one_line(refused)
    with pytest.raises(SandboxError, match="neither a tag nor a sha256 digest"):
        fetch_manifest(Repository(server.host, PATH), entry["digest"])
    with pytest.raises(SandboxError, match="is not a blob digest"):
        fetch_blob(Repository(server.host, PATH), "sha256:../../other")
    assert [seen.path for seen in server.seen] == [f"/v2/{PATH}/manifests/0.1.0"]


@pytest.mark.parametrize(
    "text",
    ["sha256:" + "a" * 64 + "\n", "ghcr.io/holsee/conjure-sandbox\n"],
    ids=["digest", "repository"],
)
def test_a_trailing_newline_is_not_part_of_a_valid_name(text: str) -> None:
    assert DIGEST.match(text) is None
    assert split_digest_ref(f"ghcr.io/x/y@{text}") is None
    if text.startswith("ghcr.io"):
        with pytest.raises(SandboxError, match="not an image repository"):
            parse_repository(text)


# -- shapes ----------------------------------------------------------------------------

DIGEST_A = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"manifests": "xy"}, "manifests is not a list"),
        ({"manifests": [{}]}, "manifests[0].digest"),
        ({"manifests": [{"digest": DIGEST_A, "platform": "linux"}]}, "manifests[0].platform"),
        ({"manifests": [{"digest": DIGEST_A, "size": "big"}]}, "manifests[0].size"),
        ({"manifests": [{"digest": DIGEST_A, "size": True}]}, "manifests[0].size"),
        ({"layers": [{"size": 3}]}, "layers[0].digest"),
        ({"layers": [{"digest": DIGEST_A, "size": "big"}]}, "layers[0].size"),
        ({"config": []}, "config is not an object"),
        ({"mediaType": 5}, "mediaType is not a string"),
        ({"layers": [{"digest": DIGEST_A, "annotations": {"a": 1}}]}, "annotations"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_one_line(
    document: object, field: str, hostile: list[HostileRegistry]
) -> None:
    server = _serve(hostile, lambda method, path: _document(document))
    for read in (fetch_manifest, fetch_document):
        with pytest.raises(SandboxError) as refused:
            read(Repository(server.host, PATH), "0.1.0")
        assert field in _one_line(refused)


@pytest.mark.parametrize(
    "body",
    [b'{"tags": 5}', b'{"tags": "abc"}', b'{"tags": [{}]}', b"[1]", b"\xff\xfe not utf-8"],
)
def test_a_tag_list_of_the_wrong_shape_is_one_line(
    body: bytes, hostile: list[HostileRegistry]
) -> None:
    server = _serve(hostile, lambda method, path: Answer(200, {}, body))
    with pytest.raises(SandboxError) as refused:
        list_tags(Repository(server.host, PATH))
    assert "the tag list" in _one_line(refused)


@pytest.mark.parametrize(
    "token", [b"[1, 2]", b'{"token": 5}', b"{}", b'{"token": "a\\nb"}', b"not json"]
)
def test_a_token_answer_of_the_wrong_shape_is_one_line(
    token: bytes, hostile: list[HostileRegistry]
) -> None:
    def script(method: str, path: str) -> Answer:
        if path.startswith("/token"):
            return Answer(200, {}, token)
        realm = f'Bearer realm="http://{server.host}/token",service="s",scope="x"'
        return Answer(401, {"WWW-Authenticate": realm})

    server = _serve(hostile, script)
    with pytest.raises(SandboxError) as refused:
        list_tags(Repository(server.host, PATH))
    assert "the token service" in _one_line(refused)


# -- credentials -----------------------------------------------------------------------


def test_an_anonymous_read_redirected_elsewhere_answers_no_challenge_there(
    hostile: list[HostileRegistry],
) -> None:
    layer = digest_of(b"layer")
    elsewhere = _serve(
        hostile,
        lambda method, path: Answer(401, {"WWW-Authenticate": 'Basic realm="elsewhere"'}),
    )
    registry = _serve(
        hostile,
        lambda method, path: Answer(307, {"Location": f"http://{elsewhere.host}/blob"}),
    )
    mine = Credentials(USER, PASSWORD, registry.host)
    with pytest.raises(SandboxError) as refused:
        fetch_blob(Repository(registry.host, PATH), layer, mine)
    assert "asked for credentials after a redirect" in _one_line(refused)
    assert elsewhere.seen, "the redirect was never followed: the test proves nothing"
    assert all(seen.authorization == "" for seen in elsewhere.seen + registry.seen)


def test_an_upload_session_on_another_host_gets_no_authorization(
    hostile: list[HostileRegistry], tmp_path: Path
) -> None:
    elsewhere = _serve(hostile, lambda method, path: Answer(201))

    def script(method: str, path: str) -> Answer:
        seen = server.seen[-1]
        if seen.authorization == "":
            return Answer(401, {"WWW-Authenticate": 'Basic realm="registry"'})
        if method == "HEAD":
            return Answer(404)
        if method == "POST":
            # The session's state token rides in the query, as docker-registry's does.
            upload = f"http://{elsewhere.host}/upload/1?_state=SECRET-STATE"
            return Answer(202, {"Location": upload})
        return Answer(201)

    server = _serve(hostile, script)
    write_layout(tmp_path / "layout.tar")
    push_layout(
        tmp_path / "layout.tar",
        Repository(server.host, PATH),
        Credentials(USER, PASSWORD, server.host),
    )
    puts = [seen for seen in elsewhere.seen if seen.method == "PUT"]
    assert len(puts) == 2, elsewhere.seen  # the config and the layer
    assert all(seen.authorization == "" for seen in puts)
    assert any(seen.authorization.startswith("Basic") for seen in server.seen)


def test_an_upload_url_is_not_shown_with_its_state_token(
    hostile: list[HostileRegistry], tmp_path: Path
) -> None:
    def script(method: str, path: str) -> Answer:
        if method == "HEAD":
            return Answer(404)
        if method == "POST":
            return Answer(202, {"Location": f"/v2/{PATH}/blobs/uploads/1?_state=SECRET-STATE"})
        return Answer(400)

    server = _serve(hostile, script)
    write_layout(tmp_path / "layout.tar")
    with pytest.raises(SandboxError) as refused:
        push_layout(tmp_path / "layout.tar", Repository(server.host, PATH))
    assert "SECRET-STATE" not in _one_line(refused)
    assert "HTTP 400" in str(refused.value)


def test_another_registry_is_read_without_the_publish_credentials(
    hostile: list[HostileRegistry],
) -> None:
    other = _serve(
        hostile, lambda method, path: Answer(401, {"WWW-Authenticate": 'Basic realm="other"'})
    )
    home = Credentials(USER, PASSWORD, "ghcr.io")
    with pytest.raises(SandboxError) as refused:
        fetch_manifest(Repository(other.host, PATH), "0.1.0", home)
    assert "needs credentials" in _one_line(refused)
    assert all(seen.authorization == "" for seen in other.seen)
    with client_config(home, other.host, log=lambda line: None) as config:
        assert config is None, "a docker config for another registry would carry the password"


@pytest.mark.parametrize("realm", ["http://127.0.0.1:9/token", "http://localhost/token"])
def test_a_loopback_realm_gets_no_password_from_a_remote_registry(realm: str) -> None:
    remote = Repository("registry.example.com", PATH)
    challenge = f'Bearer realm="{realm}",service="registry"'
    with pytest.raises(SandboxError, match="not https") as refused:
        authorization(
            challenge,
            Credentials(USER, PASSWORD, remote.host),
            f"{remote.base_url}/tags/list",
            remote,
        )
    _one_line(refused)


@pytest.mark.parametrize(
    "ref",
    ["ghcr.io/x/y@../../other", "ghcr.io/x/y", "@sha256:" + "a" * 64, "a b@sha256:" + "a" * 64],
)
def test_a_digest_reference_is_repository_at_a_full_digest(ref: str) -> None:
    assert split_digest_ref(ref) is None
    with pytest.raises(SandboxError, match="is not repo@sha256"):
        digest_in(ref)
    good = "ghcr.io/x/y@sha256:" + "a" * 64
    assert split_digest_ref(good) == ("ghcr.io/x/y", "sha256:" + "a" * 64)
