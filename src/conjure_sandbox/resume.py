"""``invoke resume``: continue a publish with exactly what an earlier attempt of this run built.

Re-running a publishing workflow would build every image again, and a
rebuild's new digests are refused by the immutability check once an earlier
attempt has tagged them. Each build job records the ``repo@digest`` it pushed
as a run artifact; a re-run downloads it (``recorded``) and tests and merges
that image again instead of building. Nothing else is taken: an image under
this variant's immutable tag (the version, or ``sha-<commit>``) that this run
did not record, whoever pushed it, is refused in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conjure_sandbox.build import write_digest
from conjure_sandbox.catalogue import job_slug, load_catalogue
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import (
    Repository,
    credentials_from_env,
    parse_repository,
    platform_image,
    split_digest_ref,
)
from conjure_sandbox.tags import tags_for
from conjure_sandbox.version import package_version


def recorded_digest(path: Path, repository: Repository) -> str | None:
    """The digest an earlier attempt recorded in ``path`` (``repo@sha256:…``), or None."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SandboxError(
            f"{path}: {error.strerror}", "download the run's digest artifacts"
        ) from None
    found = split_digest_ref(text)
    if not found or found[0] != repository.name:
        raise SandboxError(
            f"{path} holds {text[:80]!r}, not a {repository.name}@sha256:… reference",
            "re-run the workflow from the start (the recorded digest is unusable)",
        )
    return found[1]


def resume(
    settings: Settings,
    *,
    variant: str,
    platform: str,
    digest_dir: Path,
    recorded: Path | None = None,
    edge: str = "",
    log: Callable[[str], None] = print,
) -> Path | None:
    """Write the digest file for the image this run recorded, or return None: build it.

    ``recorded`` is the folder the run's digest artifacts were downloaded to
    (one ``<variant>-<platform>`` file each). Refused in one line: a recorded
    digest the registry does not serve, and an immutable tag holding an image
    for this platform that is not the recorded one.
    """
    chosen = load_catalogue(docker_dir()).get(variant)
    repository = parse_repository(settings.image)
    credentials = credentials_from_env(settings.image)
    tag = tags_for(package_version(), chosen, edge=edge).immutable[0]
    mine = (
        recorded_digest(recorded / job_slug(chosen.name, (platform,)), repository)
        if recorded
        else None
    )
    # A by-digest push with an SBOM is an index of the image and its attestation; the
    # merged index under the tag holds the image itself.
    image = platform_image(repository, mine, platform, credentials) if mine else None
    if mine and image is None:
        raise SandboxError(
            f"{repository.name}@{mine[:19]}, recorded by this run, is not in the registry "
            f"with a {platform} image",
            "re-run the workflow from the start",
        )
    held = platform_image(repository, tag, platform, credentials)
    if held is not None and held != image:
        raise SandboxError(
            f"{repository.name}:{tag} already holds {held[:19]} for {platform}, which this run "
            f"did not build{f' (it recorded {mine[:19]})' if mine else ''}; nothing is reused",
            "find out who pushed it; release a new version rather than reuse it",
        )
    if mine is None:
        log(f"nothing recorded for {chosen.name} on {platform} by this run: build it")
        return None
    path = write_digest(digest_dir, chosen.name, (platform,), repository.name, mine)
    log(
        f"resuming: this run recorded {repository.name}@{mine[:19]} for {platform}; "
        f"testing and merging that instead of a rebuild ({path})"
    )
    return path
