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

from conjure_sandbox.catalogue import load_catalogue, platforms_slug
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.registry import credentials_from_env, parse_repository, platform_image
from conjure_sandbox.tags import edge_tags, release_tags
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
    tags = edge_tags(edge, chosen) if edge else release_tags(package_version(), chosen)
    tag = tags.immutable[0]
    image = platform_image(repository, tag, platform, credentials_from_env())
    if image is None:
        log(f"nothing under {repository.name}:{tag} for {platform} yet: build it")
        return None
    digest_dir.mkdir(parents=True, exist_ok=True)
    path = digest_dir / f"{chosen.name}-{platforms_slug((platform,))}"
    path.write_text(f"{repository.name}@{image}\n")
    log(
        f"resuming: {repository.name}:{tag} already holds {platform} as {image[:19]}; "
        f"testing and merging that instead of a rebuild ({path})"
    )
    return path
