"""What a publish reads before it plans: what the registry holds under each version tag,
what the engine holds, and what the tested images would make.

The read step of ``invoke publish``; ``publishplan`` decides from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from conjure_sandbox.engine import LocalImage, local_images, own_manifests
from conjure_sandbox.publishplan import PublishRequest, RegistryState, Target
from conjure_sandbox.registry import (
    Credentials,
    RemoteManifest,
    Repository,
    ServerError,
    digest_in,
    fetch_manifest,
)
from conjure_sandbox.tested import TestedImage


def read_state(
    targets: Sequence[Target],
    request: PublishRequest,
    repository: Repository,
    records: Sequence[TestedImage],
    credentials: Credentials | None,
) -> RegistryState:
    """Read, once, everything ``plan_publish`` decides from."""
    immutable = sorted({tag for target in targets for tag in target.tags.immutable})
    held, unservable = _version_tags(repository, immutable, credentials)
    content: dict[str, str] = {}
    lone: list[str] = []
    local: Mapping[str, LocalImage] = {}
    if request.from_digests:
        # Compared by every entry inside (images and their attestations): a merged index has
        # no digest before it exists, and an extra entry is other content.
        remote = {t: " ".join(sorted(m.members)) if m else None for t, m in held.items()}
        for target in targets:
            found = (
                fetch_manifest(repository, digest_in(ref), credentials) for ref in target.sources
            )
            content[target.variant.name] = " ".join(
                sorted({member for m in found if m for member in m.members})
            )
    else:
        remote = {t: m.digest if m else None for t, m in held.items()}
        local = local_images(t.local_ref for t in targets) or {}
        for t in targets:
            lone += _interrupted_pushes(t.tags.immutable, held, t.local_ref, local.get(t.local_ref))
    return RegistryState(
        local=local,
        records=tuple(records),
        remote_digests=remote,
        content=content,
        lone_manifests=tuple(lone),
        unservable=tuple(unservable),
    )


def _version_tags(
    repository: Repository, tags: Iterable[str], credentials: Credentials | None
) -> tuple[dict[str, RemoteManifest | None], list[str]]:
    """What the registry holds under each tag, and the tags it cannot serve (5xx)."""
    from conjure_sandbox.registry import fetch_manifest

    held: dict[str, RemoteManifest | None] = {}
    unservable = []
    for tag in tags:
        try:
            held[tag] = fetch_manifest(repository, tag, credentials)
        except ServerError:
            unservable.append(tag)
            held[tag] = None
    return held, unservable


def _interrupted_pushes(
    tags: Iterable[str],
    held: Mapping[str, RemoteManifest | None],
    local_ref: str,
    image: LocalImage | None,
) -> list[str]:
    """The tags holding a lone platform manifest that is the local image's own."""
    lone = [t for t in tags if (m := held.get(t)) is not None and m.entries is None]
    if not lone or image is None:
        return []
    own = own_manifests(local_ref, image.id)
    return [t for t in lone if (m := held.get(t)) is not None and m.digest in own]
