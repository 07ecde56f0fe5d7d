"""The library side: the image this library release was published with, or a marked local build.

A released library carries pins (``pins.json``): each variant's index digest.
The image is found in the engine only when the engine recorded it under the pinned
``repo@digest`` (whatever its image store reports as the image's id), and
pulled only as ``<image>@sha256:…``, so a tag moved in the registry, or an
image someone built under the official name, is never what it returns.
When no pinned image can be had (a source checkout has none), it builds one
from the packaged Dockerfiles under a name of its own,
``conjure-sandbox-local:untested-<version>[-variant]``, which never looks
like a published reference and is never taken for the pinned image.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.compression import DEFAULT, can_unpack, check_engine, parse_compression
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.engine import reason as engine_reason
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pins, load_pins
from conjure_sandbox.pull import PullFailed, PullProgress, pull_with_progress
from conjure_sandbox.tags import parse_version, prefixed_tag
from conjure_sandbox.version import package_version, same_version

_log = logging.getLogger("conjure_sandbox")

# Releases are published in the default compression (CONJURE_COMPRESSION is for builds).
PUBLISHED = DEFAULT
# How Podman's Docker-compatible API names itself among the server's components.
PODMAN = "Podman Engine"
# Local fallback builds: no registry host, and "untested" in every tag.
LOCAL_BUILD_REPOSITORY = "conjure-sandbox-local"


def _local_build_prefix() -> str:
    """What a fallback build's tags start with; the variant's suffix follows."""
    return f"{LOCAL_BUILD_REPOSITORY}:untested-{parse_version(package_version())}"


def local_build_ref(variant: str | None = None) -> str:
    """``conjure-sandbox-local:untested-<library version>[-variant]``: a fallback build's name."""
    return prefixed_tag(_local_build_prefix(), load_catalogue(docker_dir()).get(variant))


def image_ref(variant: str | None = None, settings: Settings | None = None) -> str | None:
    """``<image>@sha256:…`` this library release pins for ``variant`` (None: the catalogue's
    default variant); None when unreleased."""
    name = load_catalogue(docker_dir()).get(variant).name  # an unknown variant is one line
    pins = _pins()
    return pins.reference(name, (settings or Settings.from_env()).image) if pins else None


def _pins() -> Pins | None:
    pins = load_pins()
    if pins is not None and not same_version(pins.version, package_version()):
        raise SandboxError(
            f"the package's pins are for {pins.version}, not this library's {package_version()}",
            "reinstall conjure-sandbox from its release wheel",
        )
    return pins


def _with_registry(image: str, registry: str | None) -> str:
    """Swap the registry host of ``image`` (``ghcr.io/holsee/x`` -> ``<registry>/holsee/x``)."""
    if not registry:
        return image
    from conjure_sandbox.registry import looks_like_host

    first, _, rest = image.partition("/")
    return f"{registry.rstrip('/')}/{rest if looks_like_host(first) and rest else image}"


def ensure_image(
    variant: str | None = None,
    *,
    registry: str | None = None,
    pull: bool = True,
    build: bool = True,
    log: Callable[[str], None] | None = None,
    progress: Callable[[PullProgress], None] | None = None,
) -> str:
    """Return a local image reference for ``variant`` (default: the catalogue's default
    variant) at this library's version.

    The pinned ``<image>@sha256:…`` when the engine recorded those exact bytes under it
    (its RepoDigests, on every image store) or can pull them from ``registry`` (default:
    the configured image's registry, ghcr.io); else a local build from the packaged
    Dockerfiles, reported as untested. Before pulling it asks the engine's version: one
    too old for the published zstd layers (before Docker 23) is refused in one line, or,
    with CONJURE_COMPRESSION=gzip, skipped for a local gzip build.
    Says which path it took through ``log`` (default: the ``conjure_sandbox`` logger, the
    fallback at WARNING); a pull reports its layers and bytes through ``progress``, and
    says nothing without it. Raises SandboxError listing every attempt when none works.
    """
    say = log or _log.info
    warn = log or _log.warning
    variant = load_catalogue(docker_dir()).get(variant).name  # None: the default variant
    settings = Settings.from_env()
    settings = replace(settings, image=_with_registry(settings.image, registry))
    pinned = image_ref(variant, settings)
    tried: list[str] = []

    if pinned is None:
        tried.append(f"this library ({package_version()}) pins no published image")
    else:
        digest = pinned.split("@", 1)[1]
        if _holds(pinned):
            say(f"{pinned}: found in the local engine ({digest[:19]}, the pinned digest)")
            return pinned
        tried.append("not in the local engine")
        if pull and not _engine_unpacks(settings, tried):
            pull = False
        if pull:
            reason = _pull(pinned, progress)
            if reason is None:
                say(f"{pinned}: pulled by digest")
                return pinned
            tried.append(f"pull failed ({reason})")
    fallback = local_build_ref(variant)
    if build:
        warn(f"{fallback}: building from the packaged Dockerfiles in {docker_dir()} (UNTESTED)")
        reason = _build(settings, variant, say)
        if reason is None:
            warn(f"{fallback}: built locally; an untested fallback, not the published image")
            return fallback
        tried.append(f"local build failed ({reason})")
    raise SandboxError(
        f"no image for {variant}: " + "; ".join(tried),
        "start Docker, check access to the registry, or allow build=True",
    )


def _holds(pinned: str) -> bool:
    """Whether the engine recorded the pinned bytes under the pinned ``repo@digest``."""
    from conjure_sandbox.engine import local_images

    found = (local_images([pinned]) or {}).get(pinned)
    return found is not None and found.holds(pinned)


def _engine_unpacks(settings: Settings, tried: list[str]) -> bool:
    """Whether the engine can unpack the published images' layers, asked before pulling.

    One that cannot is refused in one line, unless the user chose gzip: then
    the pull is skipped for a local gzip build.
    """
    from python_on_whales import docker
    from python_on_whales.exceptions import DockerException

    try:
        answer = docker.version().server
    except DockerException:
        return True  # no engine answers: the pull says so in its own words
    if answer is None:
        return True
    if any(c.name == PODMAN for c in answer.components or ()):
        return True  # Podman's image library has read zstd since Podman 3; 23.0 is Docker's
    server = str(answer.version or "")
    if can_unpack(server, PUBLISHED):
        return True
    if parse_compression(settings.compression) == PUBLISHED:
        check_engine(server, PUBLISHED, "the published images have")
    tried.append(f"not pulled (Docker Engine {server} cannot unpack {PUBLISHED.name} layers)")
    return False


def _pull(pinned: str, progress: Callable[[PullProgress], None] | None) -> str | None:
    """Pull by digest; the reason it failed, or None once the engine holds those bytes.

    With ``progress``, through the engine's API (see ``pull``), which reports as it goes;
    a pull that needs the CLI's credentials (or a CLI without dial-stdio) is retried by
    the CLI.
    """
    from python_on_whales import docker
    from python_on_whales.exceptions import DockerException

    if progress is not None:
        # A failure here is retried by the CLI below, which gives its own reason.
        with contextlib.suppress(PullFailed, OSError):
            pull_with_progress(pinned, progress)
        if _holds(pinned):
            return None
    try:
        docker.image.pull(pinned, quiet=True)
    except DockerException as error:
        return engine_reason(error)
    if not _holds(pinned):
        return f"the engine does not list {pinned} among the image's digests after the pull"
    return None


def _build(settings: Settings, variant: str, say: Callable[[str], None]) -> str | None:
    from conjure_sandbox.build import build_images
    from conjure_sandbox.request import BuildRequest

    try:
        # No SBOM: the image is for this machine, and its generator would need PyPI.
        request = BuildRequest(
            variants=(variant,), tag=_local_build_prefix(), progress="quiet", sbom=False
        )
        _, results = build_images(request, settings=settings, log=say)
    except SandboxError as error:
        return str(error)
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    return engine_reason(failed[0].error or "", "failed")
