"""The production base image, pinned by digest in one place: ``docker/base.lock``.

A tag such as ``debian:trixie-slim`` moves every week; the builds use
``name:tag@sha256:…`` so that a release is rebuilt from the bytes it was built
from, and a moved tag changes nothing until ``invoke base-pin`` moves the pin
and says what changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import DIGEST_PATTERN, looks_like_host

BASE_PIN_FILE = "base.lock"
PINNED_REF = re.compile(
    r"\A(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    rf":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})@(?P<digest>{DIGEST_PATTERN})\Z"
)
_HEADER = (
    "# The production base image (CONJURE_BASE=upstream), pinned by digest.\n"
    "# `invoke base-pin` moves it to what the tag holds now and says what changed.\n"
)
# Docker Hub's short names and where its registry API lives.
_DOCKER_HUB = "registry-1.docker.io"


@dataclass(frozen=True)
class BasePin:
    name: str
    tag: str
    digest: str

    @property
    def ref(self) -> str:
        """``name:tag@sha256:…``: what ``FROM ${BASE}`` builds on."""
        return f"{self.name}:{self.tag}@{self.digest}"

    @property
    def registry_repository(self) -> str:
        """``host/path`` of the registry API serving it (Docker Hub's short names expanded)."""
        if "/" in self.name and looks_like_host(self.name.split("/", 1)[0]):
            return self.name
        return f"{_DOCKER_HUB}/{self.name if '/' in self.name else 'library/' + self.name}"


def parse_base_pin(text: str, source: str) -> BasePin:
    """The one ``name:tag@sha256:…`` line of a base.lock; anything else is one line."""
    lines = [line.strip() for line in text.splitlines()]
    refs = [line for line in lines if line and not line.startswith("#")]
    match = PINNED_REF.match(refs[0]) if len(refs) == 1 else None
    if match is None:
        raise SandboxError(
            f"{source}: expected one name:tag@sha256:<64 hex> line, found {refs[:2]!r}",
            "run invoke base-pin to write it",
        )
    return BasePin(match["name"], match["tag"], match["digest"])


def read_base_pin(docker_dir: Path) -> BasePin:
    path = docker_dir / BASE_PIN_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SandboxError(
            f"cannot read the base pin {path} ({error.strerror})", "run from the project root"
        ) from None
    return parse_base_pin(text, str(path))


def update_base_pin(
    docker_dir: Path, image: str, *, dry_run: bool = False, log: Callable[[str], None] = print
) -> BasePin:
    """Move the pin to the digest its tag holds now; say what changed (or that nothing did).

    ``image`` is where releases are published: only its registry gets CONJURE_REGISTRY_USER's
    password."""
    from conjure_sandbox.registry import credentials_from_env, fetch_manifest, parse_repository

    old = read_base_pin(docker_dir)
    repository = parse_repository(old.registry_repository)
    # CONJURE_REGISTRY_USER's password belongs to the registry images are published to:
    # a base elsewhere (Docker Hub) is read anonymously, never with it.
    found = fetch_manifest(repository, old.tag, credentials_from_env(image))
    if found is None:
        raise SandboxError(
            f"{old.name}:{old.tag} does not exist in {repository.name}",
            f"fix the tag in {docker_dir / BASE_PIN_FILE}",
        )
    new = BasePin(old.name, old.tag, found.digest)
    platforms = ", ".join(sorted(found.platforms)) or "one image, no index"
    if new == old:
        log(f"{old.name}:{old.tag} still holds {old.digest} ({platforms}): nothing changed")
        return old
    log(f"{old.name}:{old.tag}: {old.digest} -> {new.digest} ({platforms})")
    if dry_run:
        log("dry run: base.lock left as it was")
        return new
    (docker_dir / BASE_PIN_FILE).write_text(_HEADER + new.ref + "\n", encoding="utf-8")
    log(f"wrote {docker_dir / BASE_PIN_FILE}; rebuild and test every variant on it")
    return new
