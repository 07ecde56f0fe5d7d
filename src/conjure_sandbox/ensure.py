"""The library side: which image a given library version runs, and making sure it is there."""

from __future__ import annotations

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.tags import version_tag
from conjure_sandbox.version import package_version


def image_ref(variant: str = "full", settings: Settings | None = None) -> str:
    """``<image>:<library version>[-variant]``: never ``latest``, so library and image match."""
    chosen = load_catalogue(docker_dir()).get(variant)
    return version_tag((settings or Settings.from_env()).image, package_version(), chosen)
