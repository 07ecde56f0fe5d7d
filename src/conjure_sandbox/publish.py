"""``invoke publish``: push the tested images under their version tags, then move floating tags.

``plan_publish`` is pure: from what the engine, the test records and the
registry hold, it decides every push and tag move, or refuses with one line.
``execute`` then runs it in the only safe order: immutable version tags for
every variant first (each verified to carry every declared platform), and
floating tags last, from the pushed index by digest, only when all of that
succeeded. A version tag already holding the same digest is skipped, so a
rerun after a failure completes the publish.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from conjure_sandbox.config import Settings
from conjure_sandbox.engine import reason as engine_reason
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pin, Pins
from conjure_sandbox.publishplan import (
    PublishPlan,
    PublishRequest,
    VariantRelease,
    plan_publish,
    publish_targets,
)
from conjure_sandbox.publishstate import read_state
from conjure_sandbox.registry import (
    SERVER_ERROR,
    Credentials,
    RemoteManifest,
    Repository,
    credentials_from_env,
)
from conjure_sandbox.registry.auth import client_config
from conjure_sandbox.tags import tags_for

if TYPE_CHECKING:
    from python_on_whales import DockerClient

Log = Callable[[str], None]
T = TypeVar("T")


_RERUN = "fix the cause and run the same publish again: finished steps are skipped"


def _run(step: Callable[[], T], what: str, floating: str = "floating tags were not moved") -> T:
    """Run one docker step, again on a registry's 5xx or a network error (bounded, on stderr).

    Its failure is one line saying where the floating tags stand.
    """
    from python_on_whales.exceptions import DockerException

    from conjure_sandbox.registry import NETWORK_ERROR, retry_after, retry_network
    from conjure_sandbox.retry import REGISTRY

    for attempt in range(REGISTRY.tries):
        try:
            return step()
        except DockerException as error:
            reason = engine_reason(str(error.stderr or ""))
            server_error = SERVER_ERROR.search(reason)
            if server_error and retry_after(what, int(server_error[1]), attempt):
                continue
            network = NETWORK_ERROR.search(reason)
            if network and retry_network(what, ConnectionError(network[0]), attempt):
                continue
            raise SandboxError(f"{what} failed ({reason}); {floating}", _RERUN) from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _pushed_index(
    repository: Repository, tag: str, credentials: Credentials | None
) -> RemoteManifest:
    """What the registry now serves under a tag just pushed: its digest and its platforms."""
    from conjure_sandbox.registry import fetch_manifest

    try:
        found = fetch_manifest(repository, tag, credentials)
    except SandboxError as error:
        raise SandboxError(f"{error.problem}; floating tags were not moved", _RERUN) from None
    if found is None:
        raise SandboxError(
            f"{repository.name}:{tag} vanished after it was pushed; floating tags were not moved",
            _RERUN,
        )
    return found


def _repair(
    client: DockerClient,
    release: VariantRelease,
    tag: str,
    repository: Repository,
    credentials: Credentials | None,
) -> None:
    """Upload the tested image by digest from ``docker save``, then PUT its index under ``tag``.

    ``docker push`` and ``imagetools`` both read a tag before writing it and
    stop at the registry's 5xx; a plain PUT of the manifest does not read it.
    """
    from conjure_sandbox.registry import push_layout

    with tempfile.TemporaryDirectory(prefix="conjure-repair-") as directory:
        layout = Path(directory) / "image.tar"
        _run(partial(client.image.save, release.local_ref, output=layout), f"saving {tag}")
        try:
            digest = push_layout(layout, repository, credentials, tag=tag)
        except SandboxError as error:
            raise SandboxError(
                f"{error.problem} (repairing {repository.name}:{tag}); floating tags were not "
                "moved",
                _RERUN,
            ) from None
    if digest != release.image_id:
        raise SandboxError(
            f"docker save gave {digest[:19]} for {release.local_ref}, not the tested "
            f"{release.image_id[:19]}; floating tags were not moved",
            "rebuild, test and publish again",
        )


@dataclass(frozen=True)
class SourceContent:
    """What the tested sources of a merge hold: each platform's image, and every entry
    (the images and the attestation manifests that belong to them)."""

    images: Mapping[str, str | None]
    members: frozenset[str]


def untested_content(
    release: VariantRelease, index: RemoteManifest, tested: SourceContent | None
) -> str | None:
    """What in the pushed index is not the tested content, or None when it is exactly that.

    From digests: each platform's image must be the tested one, and the index's
    entries must be the tested sources' entries, each once, nothing else (an
    extra platform or a forged attestation would be signed with the rest).
    From the engine: the index must be the tested local image.
    """
    if release.sources:
        images = tested.images if tested else {}
        wrong = [p for p in release.platforms if index.platforms.get(p) != images.get(p)]
        problems = [
            f"{p} is {(index.platforms.get(p) or 'missing')[:19]}, not the tested "
            f"{(images.get(p) or 'unknown')[:19]}"
            for p in wrong
        ]
        entries = index.entries or ()
        extra = sorted(set(entries) - (tested.members if tested else frozenset()))
        if extra:
            problems.append(
                f"entries not from the tested sources: {', '.join(e[:19] for e in extra)}"
            )
        if len(set(entries)) != len(entries):
            problems.append("an entry is listed twice")
        return ", ".join(problems) or None
    if index.digest != release.image_id:
        return f"the index is {index.digest[:19]}, not the tested {release.image_id[:19]}"
    return None


def _tested(
    release: VariantRelease, repository: Repository, credentials: Credentials | None
) -> SourceContent:
    """What each tested ``repo@digest`` serves: its platform's image and all its entries.

    A by-digest push with an SBOM is an index of the image and its attestation;
    a merge puts both into the new index.
    """
    from conjure_sandbox.registry import digest_in, fetch_manifest

    images: dict[str, str | None] = {}
    members: set[str] = set()
    for platform, source in zip(release.platforms, release.sources, strict=True):
        found = fetch_manifest(repository, digest_in(source), credentials)
        images[platform] = found.image_for(platform) if found else None
        members |= found.members if found else set()
    return SourceContent(images, frozenset(members))


def signed_digests(repository: Repository, indexes: Mapping[str, RemoteManifest]) -> list[str]:
    """What a release signs, by name: each verified index and each of its entries."""
    return [
        f"{repository.name}@{digest}"
        for index in indexes.values()
        for digest in (index.digest, *(index.entries or ()))
    ]


def execute(
    plan: PublishPlan,
    *,
    config_dir: str | None = None,
    credentials: Credentials | None = None,
    floating_now: Callable[[], Mapping[str, tuple[str, ...]]] | None = None,
    log: Log = print,
) -> dict[str, RemoteManifest]:
    """Version tags first (pushed or merged), every platform verified, then floating tags.

    Before any floating tag moves, each pushed index must hold exactly the
    tested images. ``floating_now`` re-reads, just before the moves, which
    floating tags each variant should still move (a newer release may have
    taken one meanwhile). Returns each variant's index (what CI signs).
    """
    from python_on_whales import DockerClient

    client = DockerClient(config=config_dir) if config_dir else DockerClient()
    repo = plan.repository.name
    indexes: dict[str, RemoteManifest] = {}
    for r in plan.releases:
        for tag in r.tags.immutable:
            target = f"{repo}:{tag}"
            if tag in r.present:
                log(f"already there  {target}")
            elif tag in r.repair:
                log(f"repair         {target} (its manifest cannot be served): upload, then tag")
                _repair(client, r, tag, plan.repository, credentials)
            elif r.sources:
                log(f"merge          {target} <- {' + '.join(r.sources)}")
                merge = partial(client.buildx.imagetools.create, list(r.sources), tags=[target])
                _run(merge, f"merging {target}")
            else:
                if target != r.local_ref:
                    _run(partial(client.image.tag, r.local_ref, target), f"tagging {target}")
                log(f"push           {target}")
                _run(partial(client.image.push, target, quiet=True), f"pushing {target}")
        first = f"{repo}:{r.tags.immutable[0]}"
        index = _pushed_index(plan.repository, r.tags.immutable[0], credentials)
        missing = [p for p in r.platforms if p not in index.platforms]
        if missing:
            raise SandboxError(
                f"{first} lacks {', '.join(missing)} in the registry; floating tags were not moved",
                "build and test the variant for every platform, then publish again",
            )
        tested = _tested(r, plan.repository, credentials) if r.sources else None
        wrong = untested_content(r, index, tested)
        if wrong:
            raise SandboxError(
                f"{first} does not hold the tested image ({wrong}); floating tags were not moved "
                "and nothing was signed",
                "find out who wrote the tag, then publish the tested images again",
            )
        indexes[r.variant] = index
        log(f"verified       {first} = {index.digest[:19]}: the tested {', '.join(r.platforms)}")
    now = floating_now() if floating_now else {r.variant: r.tags.floating for r in plan.releases}
    moves = []
    for r in plan.releases:
        still = set(now.get(r.variant, ()))
        for tag in r.tags.floating:
            if tag in still:
                moves.append((r, tag))
            else:
                log(f"keep           {repo}:{tag}: a newer release took it since the plan")
    for done, (r, tag) in enumerate(moves):
        digest = indexes[r.variant].digest
        log(f"move           {repo}:{tag} -> {digest[:19]}")
        create = partial(
            client.buildx.imagetools.create, [f"{repo}@{digest}"], tags=[f"{repo}:{tag}"]
        )
        moved = ", ".join(t for _, t in moves[:done]) or "none"
        left = ", ".join(t for _, t in moves[done:])
        _run(create, f"moving {repo}:{tag}", f"floating tags moved: {moved}; not moved: {left}")
    return indexes


def _check_writable(path: Path) -> None:
    """Refuse, before anything is pushed, an output file that could not be written afterwards."""
    parent = path.parent
    problem = (
        f"{parent} does not exist"
        if not parent.is_dir()
        else f"{path} is a directory"
        if path.is_dir()
        else f"{parent} is not writable"
        if not os.access(parent, os.W_OK)
        else ""
    )
    if problem:
        raise SandboxError(
            f"--digest-file {path}: {problem}; nothing was pushed",
            "create the directory or pass a writable file path",
        )


def publish(
    settings: Settings, request: PublishRequest, *, dry_run: bool = False, log: Log = print
) -> PublishPlan:
    """check_version, then read the engine, the test records and the registry once, plan,
    and push (see ``publishplan``).

    On the digests route the tested images are already in the registry by digest
    (CI's per-platform jobs) and are merged into one index per variant.
    ``request.digest_file`` receives one ``repo@digest`` line per digest to sign: each
    published index and each of its entries, all verified;
    ``request.record`` the release's pins (pins.py): each variant's index and
    platform digests, for ``invoke pin``.
    """
    from conjure_sandbox import tested, versioncheck
    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.registry import parse_repository

    edge, maintenance = request.edge, request.maintenance
    from_digests, digest_file, record = request.from_digests, request.digest_file, request.record
    for output in (digest_file, record):
        if output:
            _check_writable(output)
    repository = parse_repository(settings.image)
    catalogue = load_catalogue(docker_dir())
    catalogue.select(request.variants)  # an unknown variant is refused before anything is read
    credentials = credentials_from_env(settings.image, stdin=request.password_stdin)
    records = tested.load(settings.tested_directory)
    if not from_digests:
        from python_on_whales import DockerClient

        from conjure_sandbox.prerequisites import probe

        probe(DockerClient())  # the images to push are in the engine: it must answer
    log("# check_version")
    facts = versioncheck.run(
        settings,
        log=log,
        credentials=credentials,
        images=not from_digests,
        maintenance=maintenance,
    )
    version, published = facts.version, list(facts.published)

    targets = publish_targets(catalogue, request, version, repository, published, records)
    state = read_state(targets, request, repository, records, credentials)
    plan = plan_publish(targets, request, version, repository, state)
    log("# plan")
    for line in plan.describe():
        log(line)
    if dry_run:
        return plan
    log("# publish")

    def floating_now() -> dict[str, tuple[str, ...]]:
        """Each variant's floating tags to move, given the tags the registry holds now."""
        from conjure_sandbox.registry import list_tags

        now = list_tags(repository, credentials)
        return {
            t.variant.name: tags_for(
                version, t.variant, now, edge=edge, maintenance=maintenance
            ).floating
            for t in targets
        }

    with client_config(credentials, repository.host, log) as config_dir:
        indexes = execute(
            plan,
            config_dir=config_dir,
            credentials=credentials,
            floating_now=floating_now,
            log=log,
        )
    if digest_file:
        digest_file.write_text("".join(f"{ref}\n" for ref in signed_digests(repository, indexes)))
    if record:
        pins = Pins(
            version,
            repository.name,
            {name: Pin(i.digest, dict(i.platforms)) for name, i in indexes.items()},
        )
        record.write_text(pins.to_json())
    published_as = plan.releases[0].tags.immutable[0] if edge else version
    log(f"published {published_as}: {len(plan.releases)} variant(s)")
    return plan
