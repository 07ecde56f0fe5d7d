"""The library side: the image matching this library's version, found, pulled or built.

The image is ``<image>:<library version>[-variant]``, never ``latest``, so a
library release always runs the image built and tested for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.tags import version_tag
from conjure_sandbox.version import package_version

_log = logging.getLogger("conjure_sandbox")


def image_ref(variant: str = "full", settings: Settings | None = None) -> str:
    """``<image>:<library version>[-variant]`` for this installed library."""
    chosen = load_catalogue(docker_dir()).get(variant)
    return version_tag((settings or Settings.from_env()).image, package_version(), chosen)


def _with_registry(image: str, registry: str | None) -> str:
    """Swap the registry host of ``image`` (``ghcr.io/holsee/x`` -> ``<registry>/holsee/x``)."""
    if not registry:
        return image
    first, _, rest = image.partition("/")
    looks_like_host = "." in first or ":" in first or first == "localhost"
    return f"{registry.rstrip('/')}/{rest if looks_like_host and rest else image}"


def ensure_image(
    variant: str = "full",
    *,
    registry: str | None = None,
    pull: bool = True,
    build: bool = True,
    log: Callable[[str], None] | None = None,
) -> str:
    """Return a local image reference for ``variant`` at this library's version.

    Looks in the engine first, then pulls from ``registry`` (default: the
    configured image's registry, ghcr.io), then builds from the Dockerfiles
    shipped in the package. Says which path it took through ``log`` (default:
    the ``conjure_sandbox`` logger). Raises SandboxError listing every attempt
    when none works.
    """
    say = log or _log.info
    settings = Settings.from_env()
    settings = replace(settings, image=_with_registry(settings.image, registry))
    ref = image_ref(variant, settings)
    tried: list[str] = []

    from conjure_sandbox.uptodate import local_images

    if (local_images([ref]) or {}).get(ref):
        say(f"{ref}: found in the local engine")
        return ref
    tried.append("not in the local engine")
    if pull:
        reason = _pull(ref)
        if reason is None:
            say(f"{ref}: pulled")
            return ref
        tried.append(f"pull failed ({reason})")
    if build:
        say(f"{ref}: building from the packaged Dockerfiles in {docker_dir()}")
        reason = _build(settings, variant, say)
        if reason is None:
            say(f"{ref}: built locally")
            return ref
        tried.append(f"local build failed ({reason})")
    raise SandboxError(
        f"no image {ref}: " + "; ".join(tried),
        "start Docker, check access to the registry, or allow build=True",
    )


def _pull(ref: str) -> str | None:
    from python_on_whales import docker
    from python_on_whales.exceptions import DockerException

    try:
        docker.image.pull(ref, quiet=True)
    except DockerException as error:
        lines = str(error.stderr or error).strip().splitlines()
        return lines[-1] if lines else "no reason given"
    return None


def _build(settings: Settings, variant: str, say: Callable[[str], None]) -> str | None:
    from conjure_sandbox.build import build_images

    try:
        # No SBOM: the image is for this machine, and its generator would need PyPI.
        _, results = build_images(
            settings=settings, variants=(variant,), progress="quiet", sbom=False, log=say
        )
    except SandboxError as error:
        return str(error)
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    lines = (failed[0].error or "").strip().splitlines()
    return lines[-1] if lines else "failed"
