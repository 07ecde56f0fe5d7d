"""The production base's digest pin: read, checked, and where its registry lives (pure)."""

from __future__ import annotations

import pytest

from conjure_sandbox.basepin import BasePin, parse_base_pin, read_base_pin
from conjure_sandbox.config import docker_dir
from conjure_sandbox.engine import _by_digest
from conjure_sandbox.errors import SandboxError

DIGEST = "sha256:" + "ab" * 32


def test_the_shipped_pin_is_one_digest_pinned_debian_reference() -> None:
    pin = read_base_pin(docker_dir())
    assert (pin.name, pin.tag) == ("debian", "trixie-slim")
    assert pin.ref.startswith("debian:trixie-slim@sha256:")
    assert pin.registry_repository == "registry-1.docker.io/library/debian"


@pytest.mark.parametrize(
    "text",
    [
        "debian:trixie-slim\n",  # a tag alone moves
        f"debian@{DIGEST}\n",  # no tag: base-pin could not move it
        f"debian:trixie-slim@sha256:{'ab' * 31}\n",  # a short digest
        f"debian:trixie-slim@{DIGEST}\ndebian:13@{DIGEST}\n",  # two pins
        "# only a comment\n",
        f"../debian:trixie-slim@{DIGEST}\n",
        f"debian:trixie slim@{DIGEST}\n",
    ],
)
def test_a_bad_pin_is_one_line(text: str) -> None:
    with pytest.raises(SandboxError, match="expected one name:tag@sha256") as caught:
        parse_base_pin(text, "docker/base.lock")
    assert "\n" not in str(caught.value)


def test_registry_repository_expands_docker_hub_short_names_only() -> None:
    assert BasePin("corp/debian", "13", DIGEST).registry_repository == (
        "registry-1.docker.io/corp/debian"
    )
    assert BasePin("127.0.0.1:5000/library/debian", "t", DIGEST).registry_repository == (
        "127.0.0.1:5000/library/debian"
    )


def test_a_pinned_reference_matches_the_engines_repo_digest() -> None:
    assert _by_digest(f"debian:trixie-slim@{DIGEST}") == f"debian@{DIGEST}"
    assert _by_digest(f"127.0.0.1:5000/x/y:t@{DIGEST}") == f"127.0.0.1:5000/x/y@{DIGEST}"
    assert _by_digest("debian:trixie-slim") == ""
