"""``invoke resume``: continue a publish an earlier attempt of the same CI run began.

Re-running a publishing workflow would build every image again, and a
rebuild's new digests are refused by the immutability check once an earlier
attempt has pushed the version tag. When the registry already holds this
variant's immutable tag (the version tag, or ``sha-<commit>`` for a main
build) with an image for this platform, that image is what gets tested and
merged again: its ``repo@digest`` is written where ``invoke build
--digest-dir`` would write one, and the build is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conjure_sandbox.build import write_digest
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.registry import credentials_from_env, parse_repository, platform_image
from conjure_sandbox.tags import tags_for
from conjure_sandbox.version import package_version


def resume(
    settings: Settings,
    *,
    variant: str,
    platform: str,
    digest_dir: Path,
    edge: str = "",
    log: Callable[[str], None] = print,
) -> Path | None:
    """Write the digest file for an already published image, or return None: build it."""
    chosen = load_catalogue(docker_dir()).get(variant)
    repository = parse_repository(settings.image)
    tag = tags_for(package_version(), chosen, edge=edge).immutable[0]
    image = platform_image(repository, tag, platform, credentials_from_env())
    if image is None:
        log(f"nothing under {repository.name}:{tag} for {platform} yet: build it")
        return None
    path = write_digest(digest_dir, chosen.name, (platform,), repository.name, image)
    log(
        f"resuming: {repository.name}:{tag} already holds {platform} as {image[:19]}; "
        f"testing and merging that instead of a rebuild ({path})"
    )
    return path
