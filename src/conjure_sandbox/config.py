"""Names, paths and switches, each with a default and an environment override.

Tests and forks override these through the environment (or by constructing
``Settings`` directly); nothing else in the package hard-codes them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_IMAGE = "ghcr.io/holsee/conjure-sandbox"
LOCAL_BASE = "conjure-sandbox/base:trixie-slim"
LOOPBACK_REGISTRY = "127.0.0.1:5000"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Where build caches live between runs, unless CONJURE_CACHE says otherwise (see cache.py).
DEFAULT_CACHE_DIR = Path("~/.cache/conjure-sandbox/buildx")
# What debootstrap checks the archive's Release signatures with (and the image's apt uses).
ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
BASE_SUITE = "trixie"
# The SBOM generator's folder inside docker/ (see sbom.py).
SBOM_GENERATOR_DIR = "sbom"
# Every layer's compression, unless CONJURE_COMPRESSION or --compression says gzip
# (see compression.py), and zstd's level, chosen by measuring size, build time and
# unpack time on full's layers (docs/benchmarks.md, "Layer compression").
DEFAULT_COMPRESSION = "zstd"
ZSTD_LEVEL = 12
# How the sandbox executor starts a container, plus dropping every capability:
# the image tests and `invoke bench --images` run the images exactly so.
EXECUTOR_FLAGS = (
    *("--read-only", "--tmpfs", "/tmp", "--network", "none"),
    *("--security-opt", "no-new-privileges", "--cap-drop", "ALL"),
)

_PACKAGE_DIR = Path(__file__).resolve().parent
# The checkout this package runs from, when it runs from one: pyproject.toml (the version),
# CHANGELOG.md, docker/ and the git tags live there.
SOURCE_ROOT = _PACKAGE_DIR.parents[1]


def docker_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding the Dockerfiles and variants.toml.

    CONJURE_DOCKER_DIR when set (a fork's own catalogue), else the source
    tree's ``docker/`` in a checkout, else the copy the wheel ships.
    """
    env = os.environ if environ is None else environ
    if env.get("CONJURE_DOCKER_DIR"):
        return Path(env["CONJURE_DOCKER_DIR"])
    source = SOURCE_ROOT / "docker"
    if (source / "variants.toml").is_file():
        return source
    return _PACKAGE_DIR / "docker"


def pins_file(environ: Mapping[str, str] | None = None) -> Path:
    """The digests this library release runs (see pins.py).

    CONJURE_PINS when set (tests, a fork's mirror), else the package's pins.json,
    which only a release wheel carries.
    """
    env = os.environ if environ is None else environ
    return Path(env["CONJURE_PINS"]) if env.get("CONJURE_PINS") else _PACKAGE_DIR / "pins.json"


@dataclass(frozen=True)
class Settings:
    """Where images go and what they are built from."""

    image: str = DEFAULT_IMAGE
    # The production base; empty: the digest pin in docker/base.lock (see basepin.py).
    upstream_base: str = ""
    # "upstream" (the production default), "local" (the debootstrap base), or any image ref.
    base: str = "upstream"
    local_base: str = LOCAL_BASE
    registry: str = LOOPBACK_REGISTRY
    # A path, "auto" (the host's system bundle when there is one) or "none".
    ca_bundle: str = "auto"
    mirror: str = DEBIAN_MIRROR
    # Build cache between runs: a directory, a registry repository, or "none" (see cache.py).
    cache: str = str(DEFAULT_CACHE_DIR)
    # SBOM attestations from the generator built here (docker/sbom/) on loaded and pushed images.
    sbom: bool = True
    # Where the image tests record the exact images that passed (see tested.py).
    tested_dir: str = "~/.cache/conjure-sandbox/tested"
    # "zstd" or "gzip" (for engines before Docker 23; see compression.py).
    compression: str = DEFAULT_COMPRESSION

    @property
    def base_image(self) -> str:
        """The image reference the Dockerfiles' ``FROM ${BASE}`` resolves to."""
        if self.base == "upstream":
            from conjure_sandbox.basepin import read_base_pin

            return self.upstream_base or read_base_pin(docker_dir()).ref
        if self.base == "local":
            return self.local_base
        return self.base

    @property
    def tested_directory(self) -> Path:
        return Path(self.tested_dir).expanduser()

    @property
    def uses_local_base(self) -> bool:
        return self.base_image == self.local_base

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            image=env.get("CONJURE_IMAGE", DEFAULT_IMAGE),
            upstream_base=env.get("CONJURE_UPSTREAM_BASE", ""),
            base=env.get("CONJURE_BASE", "upstream"),
            local_base=env.get("CONJURE_LOCAL_BASE", LOCAL_BASE),
            registry=env.get("CONJURE_REGISTRY", LOOPBACK_REGISTRY),
            ca_bundle=env.get("CONJURE_CA_BUNDLE", "auto"),
            mirror=env.get("CONJURE_DEBIAN_MIRROR", DEBIAN_MIRROR),
            cache=env.get("CONJURE_CACHE", str(DEFAULT_CACHE_DIR)),
            sbom=env.get("CONJURE_SBOM", "1").lower() not in ("0", "false", "no"),
            tested_dir=env.get("CONJURE_TESTED_DIR", "~/.cache/conjure-sandbox/tested"),
            compression=env.get("CONJURE_COMPRESSION", DEFAULT_COMPRESSION),
        )
