"""The publish plan: from what the engine, the test records and the registry hold, every
push, merge and tag move, or a refusal in one line before anything is pushed.

Pure. ``PublishRequest`` says what is asked (which variants, by which route, a
release or an edge build), ``RegistryState`` what was read; ``plan_publish``
decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from conjure_sandbox.catalogue import Catalogue, Variant
from conjure_sandbox.engine import LocalImage
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import VERSION_LABEL
from conjure_sandbox.registry import Repository, split_digest_ref
from conjure_sandbox.tags import TagSet, check_newer, parse_version, tags_for, version_tag
from conjure_sandbox.tested import TestedImage, complete_runs, untested_platforms


class Route(Enum):
    """Where the tested images are, and so how they are published."""

    ENGINE = "engine"  # in the local engine: push them (a maintainer's route)
    DIGESTS = "digests"  # in the registry by digest: merge them (CI's route)


@dataclass(frozen=True)
class Release:
    """A release of the package version; ``maintenance``: a patch on an older X.Y line."""

    maintenance: bool = False


@dataclass(frozen=True)
class Edge:
    """A main-branch build at ``revision``: ``sha-<revision>`` and ``edge`` tags only."""

    revision: str


@dataclass(frozen=True)
class PublishRequest:
    """One ``invoke publish``."""

    variants: tuple[str, ...] = ()
    route: Route = Route.ENGINE
    kind: Release | Edge = Release()
    # Overwrite a version tag that holds other content (saying so).
    force: bool = False
    password_stdin: bool = False
    # Receives one ``repo@digest`` line per published index.
    digest_file: Path | None = None
    # Receives the release's pins (pins.py), for ``invoke pin``.
    record: Path | None = None

    @property
    def from_digests(self) -> bool:
        return self.route is Route.DIGESTS

    @property
    def edge(self) -> str:
        return self.kind.revision if isinstance(self.kind, Edge) else ""

    @property
    def maintenance(self) -> bool:
        return isinstance(self.kind, Release) and self.kind.maintenance


def publish_kind(edge: str, maintenance: bool) -> Release | Edge:
    """``--edge`` and ``--maintenance`` as one kind; both at once is refused in one line."""
    if edge and maintenance:
        raise SandboxError(
            "--maintenance is for releases, and --edge publishes a main-branch build",
            "drop one of them",
        )
    return Edge(edge) if edge else Release(maintenance)


@dataclass(frozen=True)
class Target:
    """One variant to publish: its tags, and where its tested image is: on the engine route
    the engine's ``local_ref``, on the digests route its tested images by digest."""

    variant: Variant
    tags: TagSet
    local_ref: str = ""
    sources: tuple[str, ...] = ()


def publish_targets(
    catalogue: Catalogue,
    request: PublishRequest,
    version: str,
    repository: Repository,
    published: Sequence[str],
    records: Sequence[TestedImage],
) -> tuple[Target, ...]:
    """Each selected variant's tags (from the tags already ``published``) and, on the digests
    route, the records' tested images; refused when a release would not be the newest."""
    parsed = str(parse_version(version))
    edge, maintenance = request.edge, request.maintenance
    targets = []
    for variant in catalogue.select(request.variants):
        if not edge:
            check_newer(parsed, published, variant, maintenance=maintenance)
        tags = tags_for(parsed, variant, published, edge=edge, maintenance=maintenance)
        if request.from_digests:
            sources = tested_digests(variant.name, variant.platforms, repository, records, parsed)
            targets.append(Target(variant, tags, sources=sources))
        else:
            targets.append(
                Target(variant, tags, local_ref=version_tag(repository.name, parsed, variant))
            )
    return tuple(targets)


@dataclass(frozen=True)
class RegistryState:
    """What was read before planning.

    ``local`` maps each variant's version tag to the engine's image; ``records``
    are the test records; ``remote_digests`` maps version tags to what the
    registry holds there. On the digests route ``content`` gives, per variant,
    the identity the merged index would have (compared with ``remote_digests``).
    ``lone_manifests`` names version tags that hold one of the tested image's own
    per-platform manifests: ``docker push`` (containerd image store) puts each
    child manifest under the tag before the index, so an interrupted push leaves
    one. ``unservable`` names version tags whose manifest the registry cannot
    serve (5xx).
    """

    local: Mapping[str, LocalImage]
    records: tuple[TestedImage, ...]
    remote_digests: Mapping[str, str | None]
    content: Mapping[str, str] = field(default_factory=dict)
    lone_manifests: tuple[str, ...] = ()
    unservable: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariantRelease:
    """One variant's tested image and the tags it gets.

    Either a local image to push (``local_ref``, ``image_id``), or tested
    per-platform images already in the registry by digest (``sources``) to
    merge into one index: CI's route.
    """

    variant: str
    local_ref: str
    image_id: str
    platforms: tuple[str, ...]
    tags: TagSet
    # Version tags the registry already holds with this exact content: nothing to do.
    present: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    # Version tags whose manifest the registry cannot serve (an interrupted push): rewritten.
    repair: tuple[str, ...] = ()

    @property
    def origin(self) -> str:
        return (
            " + ".join(self.sources) if self.sources else f"{self.local_ref} ({self.image_id[:19]})"
        )


@dataclass(frozen=True)
class PublishPlan:
    version: str
    repository: Repository
    releases: tuple[VariantRelease, ...]
    # Version tags to overwrite (with --force), by tag, with the digest they hold now.
    overwrites: tuple[tuple[str, str], ...] = ()

    def describe(self) -> list[str]:
        lines = [f"publish {self.version} to {self.repository.name}"]
        for r in self.releases:
            for tag in r.tags.immutable:
                state = (
                    "already there"
                    if tag in r.present
                    else "repair"
                    if tag in r.repair
                    else "merge"
                    if r.sources
                    else "push"
                )
                lines.append(f"  {state:<13} {self.repository.name}:{tag} <- {r.origin}")
            lines.append(f"  verify        {', '.join(r.platforms)} in {r.tags.immutable[0]}")
        for tag, digest in self.overwrites:
            lines.append(f"  OVERWRITE     {self.repository.name}:{tag} (now {digest[:19]})")
        for r in self.releases:
            for tag in r.tags.floating:
                source = f"{r.tags.immutable[0]} (its index digest)"
                lines.append(f"  move          {self.repository.name}:{tag} -> {source}")
        return lines


def plan_publish(
    targets: Sequence[Target],
    request: PublishRequest,
    version: str,
    repository: Repository,
    state: RegistryState,
) -> PublishPlan:
    """Decide every push, merge and tag move, or refuse (nothing pushed yet) with reason and fix.

    On the digests route the tested images are the records' ``repo@digest``
    references instead of local images. A lone manifest of the tested image is
    completed; a tag holding any other content, a lone manifest included, is
    refused like every overwrite (``request.force`` overwrites it). An
    unservable tag is written again.
    """
    lone, broken = set(state.lone_manifests), set(state.unservable)
    from_digests = request.from_digests
    records, local = list(state.records), state.local
    parsed = str(parse_version(version))
    releases = []
    overwrites = []
    for target in targets:
        variant, tags, local_ref = target.variant, target.tags, target.local_ref
        if from_digests:
            identity = state.content.get(variant.name, "")
        else:
            identity = _tested_local(
                variant.name, variant.platforms, local_ref, local, records, parsed
            )
        present, repair = [], []
        for tag in tags.immutable:
            if tag in broken:
                if from_digests:
                    raise SandboxError(
                        f"the registry cannot serve {repository.name}:{tag} (HTTP 5xx on its "
                        "manifest, left by an interrupted push), which imagetools cannot replace",
                        "invoke publish without --from-digests from a machine holding the "
                        "tested images, or delete the tag in the registry, then run again",
                    )
                repair.append(tag)  # nobody can pull it; writing it again loses nothing
                continue
            held = state.remote_digests.get(tag)
            if held is not None and held == identity:
                present.append(tag)
            elif held is not None and tag in lone:
                continue  # an interrupted push of this very image: pushing again completes it
            elif held is not None:
                if not request.force:
                    raise SandboxError(
                        f"{repository.name}:{tag} already holds {held[:19]}, other content than "
                        "the tested image; release tags are immutable",
                        "release a new version (invoke release --bump patch); --force "
                        "overwrites it, breaking everyone who pinned it",
                    )
                overwrites.append((tag, held))
        releases.append(
            VariantRelease(
                variant.name,
                local_ref,
                "" if from_digests else identity,
                variant.platforms,
                tags,
                tuple(present),
                target.sources,
                tuple(repair),
            )
        )
    return PublishPlan(parsed, repository, tuple(releases), tuple(overwrites))


def _tested_local(
    variant: str,
    platforms: tuple[str, ...],
    local_ref: str,
    local: Mapping[str, LocalImage],
    records: list[TestedImage],
    version: str,
) -> str:
    """The ID of the local image to push, once it is known to be the tested one."""
    image = local.get(local_ref)
    if image is None:
        raise SandboxError(
            f"{local_ref} is not in the engine",
            f"invoke build --variant {variant} --load "
            + " ".join(f"--platform {p}" for p in platforms),
        )
    label = image.labels.get(VERSION_LABEL)
    if label != version:
        raise SandboxError(
            f"{local_ref} carries version label {label!r}, not {version!r}",
            "rebuild it with invoke build, then test it again",
        )
    missing = untested_platforms(records, variant, image.id, platforms)
    if missing:
        raise SandboxError(
            f"{local_ref} ({image.id[:19]}) has not passed its complete image suite on "
            + _found(missing),
            f"nox -s \"test_images(variant='{variant}')\" -- --image {local_ref.rsplit(':', 1)[0]} "
            "--platform P, for each platform P (no -m, -k or deselections)",
        )
    return image.id


def _found(missing: Mapping[str, str]) -> str:
    """``linux/amd64 (no record), linux/arm64 (only a run with -m 'contract')``."""
    return ", ".join(
        f"{p} ({f'only a run with {why}' if why else 'no record'})" for p, why in missing.items()
    )


def tested_digests(
    variant: str,
    platforms: tuple[str, ...],
    repository: Repository,
    records: Sequence[TestedImage],
    version: str,
) -> tuple[str, ...]:
    """One tested ``repo@digest`` per platform, in platform order, from the records."""
    runs, missing = complete_runs(
        records,
        platforms,
        lambda r: (
            r.variant == variant
            and r.version == version
            and (split_digest_ref(r.ref) or ("",))[0] == repository.name
        ),
    )
    if missing:
        raise SandboxError(
            f"no {variant} image in {repository.name} passed its complete image suite on "
            + _found(missing),
            "build it with --by-digest and run its whole image suite with --image <repo@digest>",
        )
    found = {p: {r.ref for r in runs[p]} for p in platforms}
    several = [p for p in platforms if len(found[p]) > 1]
    if several:
        raise SandboxError(
            f"several tested {variant} images for {', '.join(several)}",
            "keep the records of one run only (CONJURE_TESTED_DIR)",
        )
    return tuple(found[p].pop() for p in platforms)
