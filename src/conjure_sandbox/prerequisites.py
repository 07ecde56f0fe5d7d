"""What a build needs from the machine, each missing piece as a one-line error with its fix.

``probe`` asks the engine once; the ``check_*`` functions are pure and decide
from what it found, so the rules are unit-tested without a daemon.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conjure_sandbox import dockerfiles
from conjure_sandbox.engine import reason as engine_reason
from conjure_sandbox.errors import SandboxError

if TYPE_CHECKING:
    from python_on_whales import DockerClient

PROVISION = "scripts/provision-engine.sh"
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"
CONTAINERD_STORE_SETTING = '{"features":{"containerd-snapshotter":true}}'


@dataclass(frozen=True)
class EngineFacts:
    """What the engine (``docker info``) and its buildx builder (``buildx inspect``) can do."""

    server_version: str
    # Images keep their OCI index, so a multi-platform image can be loaded.
    containerd_store: bool
    builder: str
    # "docker" runs in the engine; the others (docker-container, …) are builders of their own.
    driver: str
    platforms: tuple[str, ...]
    # The engine's storage driver as it names it: overlay2 (classic), overlayfs (containerd).
    storage_driver: str = ""

    def describe(self) -> str:
        """``engine 26.1.5 (classic image store, overlay2), builder default (docker driver)``."""
        store = "containerd" if self.containerd_store else "classic"
        driver = f", {self.storage_driver}" if self.storage_driver else ""
        return (
            f"engine {self.server_version} ({store} image store{driver}), "
            f"builder {self.builder} ({self.driver} driver)"
        )

    def store_costs(self) -> tuple[str, ...]:
        """What this engine's builder and store cannot do that a build would want; empty
        when nothing is lost."""
        if self.containerd_store or self.driver != "docker":
            return ()
        return (
            "no multi-platform build or load (one --platform at a time)",
            "no build cache export (steps stay in the engine's own build cache)",
            "no SBOM attestations",
            "a loaded image is named by its config digest: the index digest exists once pushed",
        )


def probe(client: DockerClient, builder: str | None = None) -> EngineFacts:
    """Ask the engine and the buildx builder what they offer; raise when either is missing."""
    from python_on_whales.exceptions import DockerException

    if shutil.which(str(client.client_config.client_call[0])) is None:
        raise SandboxError(
            "the docker CLI is not installed", f"run {PROVISION} (Debian) or install Docker"
        )
    try:
        info = client.info()
    except DockerException as error:
        reason = engine_reason(error, type(error).__name__)
        raise SandboxError(
            f"no Docker engine answers ({reason})",
            f"run {PROVISION} (Debian) or start Docker",
        ) from None
    try:
        client.buildx.version()
    except DockerException:
        raise SandboxError(
            "docker buildx is not installed",
            f"run {PROVISION} (Debian: docker-buildx) or install the buildx plugin",
        ) from None
    try:
        inspected = client.buildx.inspect(builder)
    except DockerException as error:
        raise SandboxError(
            f"buildx builder {builder or 'default'!r} is not usable "
            f"({engine_reason(error, type(error).__name__)})",
            "list builders with `docker buildx ls`",
        ) from None
    platforms: list[str] = []
    for node in inspected.nodes or ():
        platforms.extend(p for p in node.platforms or () if p not in platforms)
    driver_status = dict(
        (pair[0], pair[1]) for pair in (info.driver_status or []) if len(pair) == 2
    )
    return EngineFacts(
        server_version=str(info.server_version),
        builder=inspected.name or builder or "default",
        platforms=tuple(platforms),
        containerd_store=driver_status.get("driver-type") == CONTAINERD_SNAPSHOTTER,
        driver=str(inspected.driver or "docker"),
        storage_driver=str(info.driver or ""),
    )


# The architectures Debian ships images for: what a linux/<arch> here can name.
ARCHITECTURES = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le")
_PLATFORM = re.compile(r"\A(?P<os>[a-z0-9]+)/(?P<arch>[a-z0-9]+)(?:/v\d+)?\Z")


def check_platform_names(wanted: Iterable[str]) -> None:
    """Each platform is ``linux/<architecture>``: a typo is named as one, not as missing QEMU."""
    for platform in wanted:
        match = _PLATFORM.match(platform)
        if match and match["os"] == "linux" and match["arch"] in ARCHITECTURES:
            continue
        if match and match["os"] != "linux":
            problem = f"{platform!r}: the sandbox images are Linux images"
        elif platform in ARCHITECTURES:
            problem = f"{platform!r} is an architecture, not a platform"
        else:
            problem = f"{platform!r} is not a valid platform"
        arch = platform if platform in ARCHITECTURES else "amd64"
        raise SandboxError(problem, f"use os/architecture, e.g. linux/{arch} or linux/arm64")


def check_platforms(facts: EngineFacts, wanted: Iterable[str]) -> None:
    missing = [p for p in wanted if p not in facts.platforms]
    if missing:
        raise SandboxError(
            f"builder {facts.builder!r} cannot build {', '.join(missing)} "
            f"(it offers {', '.join(facts.platforms) or 'nothing'}; no binfmt emulation?)",
            f"run {PROVISION} to enable QEMU, or use --builder with native nodes",
        )


def check_load(facts: EngineFacts, platforms: tuple[str, ...], load: bool) -> None:
    """Several platforms in one build: loading them needs the containerd image store, and
    the docker driver builds them only with it (even to push or for the cache)."""
    if len(platforms) < 2 or facts.containerd_store:
        return
    if load:
        raise SandboxError(
            "loading a multi-platform image needs the containerd image store, which is off",
            f"add {CONTAINERD_STORE_SETTING} to /etc/docker/daemon.json and restart dockerd, "
            "or --push instead of --load",
        )
    if facts.driver == "docker":
        raise SandboxError(
            f"builder {facts.builder!r} (docker driver, classic image store) builds one "
            "platform at a time",
            f"add {CONTAINERD_STORE_SETTING} to /etc/docker/daemon.json and restart dockerd, "
            "pass one --platform, or use a docker-container builder "
            "(docker buildx create --use)",
        )


def check_dockerfiles(paths: Iterable[Path], docker_dir: Path) -> None:
    """Every Dockerfile exists, and its copies of the shared layers are current."""
    paths = list(paths)
    for path in paths:
        if not path.is_file():
            raise SandboxError(
                f"Dockerfile {path} does not exist", "create it or fix docker/variants.toml"
            )
    stale = [drift.dockerfile.name for drift in dockerfiles.drifted(paths, docker_dir)]
    if stale:
        raise SandboxError(
            f"{', '.join(stale)}: shared layers differ from docker/layers/",
            "run invoke dockerfiles (or invoke dockerfiles --check to see the difference)",
        )


def image_present(client: DockerClient, ref: str) -> bool:
    return bool(client.image.exists(ref))
