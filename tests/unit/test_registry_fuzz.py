"""Generated answers through a real HTTP exchange: a one-line error or a result, never a traceback.

A fixed seed makes the same 2,400 cases on every run (a failure names its case
number, and the case comes back with the seed). Each case takes one registry
read (a manifest by tag or by digest, a document, a tag list, a blob) and
answers it with a generated mutation of a valid document, random bytes, a
random status, random ``Link``, ``Location`` and ``WWW-Authenticate`` headers,
or a token service answering with the same. Redirects go only to loopback
ports (no request leaves the machine). The retry's waits are not slept.
Memory is measured over the whole run with ``tracemalloc``.
"""

from __future__ import annotations

import json
import random
import tracemalloc
import types
from collections.abc import Callable
from typing import Any

import pytest

from conjure_sandbox import retry
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import (
    Credentials,
    Repository,
    fetch_blob,
    fetch_document,
    fetch_manifest,
    list_tags,
)
from conjure_sandbox.registry.reference import digest_of
from tests.hostileregistry import Answer, HostileRegistry

SEED = 32
CASES = 2400
PEAK_BYTES = 200 * 1024 * 1024
PATH = "holsee/conjure-sandbox"
DIGEST_A = "sha256:" + "a" * 64

VALID_INDEX: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": DIGEST_A,
            "size": 100,
            "platform": {"os": "linux", "architecture": "amd64"},
        },
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "b" * 64,
            "size": 100,
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
        },
    ],
}
VALID_MANIFEST: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST_A},
    "layers": [{"mediaType": "x", "digest": DIGEST_A, "size": 3}],
}
VALID_TAGS: dict[str, Any] = {"name": PATH, "tags": ["0.1.0", "latest"]}
VALID_TOKEN: dict[str, Any] = {"token": "a-token", "expires_in": 300}

ODD_VALUES: list[object] = [
    None, True, False, 0, -1, 2**70, 1e308, float("nan"), "", "xy", "../../other/x",
    "sha256:../x", DIGEST_A + "\n", "a\nb", "\u202e", [], {}, [{}], [1, "a"], {"os": 5},
    {"digest": DIGEST_A}, "x" * 5000,
]  # fmt: skip


def _mutate(value: Any, rng: random.Random) -> Any:
    """A copy of ``value`` with one node somewhere replaced by an odd value."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        return {**value, key: _mutate(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.7:
        copy = list(value)
        at = rng.randrange(len(copy))
        copy[at] = _mutate(copy[at], rng)
        return copy
    return rng.choice(ODD_VALUES)


def _body(rng: random.Random, valid: dict[str, Any]) -> bytes:
    kind = rng.random()
    if kind < 0.55:
        document = valid
        for _ in range(rng.randint(1, 3)):
            document = _mutate(document, rng)
        return json.dumps(document).encode()
    if kind < 0.65:
        return json.dumps(valid).encode()[: rng.randrange(1, 40)]  # cut off
    if kind < 0.72:
        return b"[" * 200_000  # nested deeper than the parser's recursion
    if kind < 0.8:
        return json.dumps(rng.choice(ODD_VALUES)).encode()
    return rng.randbytes(rng.randrange(0, 300))


def _header(rng: random.Random, closed: str) -> dict[str, str]:
    """Zero or one odd header: a Link, a Location on a closed loopback port, a challenge."""
    choice = rng.randrange(6)
    if choice == 0:
        target = rng.choice([f"/v2/{PATH}/tags/list?n=1", "http://127.0.0.1:1/x", "<<>>", ""])
        return {"Link": f'<{target}>; rel="next"'}
    if choice == 1:
        return {"Location": rng.choice([f"http://{closed}/blob", "/v2/other", "::"])}
    if choice == 2:
        return {
            "WWW-Authenticate": rng.choice(['Bearer realm=""', "Basic", "x" * 300, 'Bearer x="'])
        }
    return {}


Read = Callable[[Repository, Credentials], object]
READS: list[tuple[str, Read, dict[str, Any]]] = [
    ("manifest by tag", lambda r, c: fetch_manifest(r, "0.1.0", c), VALID_INDEX),
    ("manifest by digest", lambda r, c: fetch_manifest(r, DIGEST_A, c), VALID_MANIFEST),
    ("document", lambda r, c: fetch_document(r, "0.1.0", c), VALID_MANIFEST),
    ("tag list", lambda r, c: list_tags(r, c), VALID_TAGS),
    ("blob", lambda r, c: fetch_blob(r, digest_of(b"{}"), c), {}),
]


@pytest.fixture
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "time", types.SimpleNamespace(sleep=lambda seconds: None))


@pytest.fixture
def closed_port() -> str:
    """A loopback address nothing listens on: a server started, then closed."""
    server = HostileRegistry(lambda method, path: Answer(404))
    server.close()
    return server.host


def test_generated_answers_end_in_a_result_or_one_line(no_waits: None, closed_port: str) -> None:
    rng = random.Random(SEED)
    current: dict[str, Callable[[str, str], Answer]] = {}
    server = HostileRegistry(lambda method, path: current["script"](method, path))
    repository = Repository(server.host, PATH)
    credentials = Credentials("maint", "fuzz-password", server.host)
    outcomes = {"result": 0, "refused": 0}
    tracemalloc.start()
    try:
        for case in range(CASES):
            name, read, valid = rng.choice(READS)
            status = rng.choice([200] * 6 + [201, 204, 301, 307, 400, 401, 403, 404, 429, 500])
            answer = Answer(status, _header(rng, closed_port), _body(rng, valid))
            token = Answer(rng.choice([200, 200, 401, 500]), {}, _body(rng, VALID_TOKEN))
            challenge = rng.random() < 0.25
            realm = f'Bearer realm="http://{server.host}/token",service="s",scope="x"'

            def script(method: str, path: str, answer: Answer = answer, token: Answer = token,
                       challenge: bool = challenge, realm: str = realm) -> Answer:  # fmt: skip
                if path.startswith("/token"):
                    return token
                if challenge and not server.seen[-1].authorization:
                    return Answer(401, {"WWW-Authenticate": realm})
                return answer

            current["script"] = script
            refused = ""
            try:
                read(repository, credentials)
                outcomes["result"] += 1
            except SandboxError as error:
                refused = str(error)
                outcomes["refused"] += 1
            except Exception as error:
                pytest.fail(f"case {case} ({name}, HTTP {status}): {type(error).__name__}: {error}")
            assert "\n" not in refused, f"case {case} ({name}): {refused}"
            assert "fuzz-password" not in refused, f"case {case} ({name}): {refused}"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
    print(f"{CASES} cases: {outcomes}, peak {peak / 1e6:.1f} MB")
    assert sum(outcomes.values()) == CASES
    # Both outcomes occur: the generator reaches the parsers, not only their refusals.
    assert outcomes["result"] > 50, outcomes
    assert outcomes["refused"] > 1000, outcomes
    assert peak < PEAK_BYTES, peak
