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

import json
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from conjure_sandbox.catalogue import Catalogue
from conjure_sandbox.config import Settings
from conjure_sandbox.engine import LocalImage
from conjure_sandbox.engine import reason as engine_reason
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pin, Pins
from conjure_sandbox.plan import VERSION_LABEL
from conjure_sandbox.registry import (
    SERVER_ERROR,
    Credentials,
    RemoteManifest,
    Repository,
    ServerError,
    credentials_from_env,
)
from conjure_sandbox.tags import TagSet, check_newer, parse_version, tags_for, version_tag
from conjure_sandbox.tested import TestedImage, complete_runs, untested_platforms

if TYPE_CHECKING:
    from python_on_whales import DockerClient

Log = Callable[[str], None]
T = TypeVar("T")


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
    catalogue: Catalogue,
    *,
    version: str,
    repository: Repository,
    variants: Iterable[str],
    local: Mapping[str, LocalImage],
    records: Iterable[TestedImage],
    published: Iterable[str],
    remote_digests: Mapping[str, str | None],
    force: bool = False,
    maintenance: bool = False,
    from_digests: bool = False,
    content: Mapping[str, str] | None = None,
    edge: str = "",
    lone_manifests: Iterable[str] = (),
    unservable: Iterable[str] = (),
) -> PublishPlan:
    """Decide every push, merge and tag move, or refuse (nothing pushed yet) with reason and fix.

    ``local`` maps each variant's version tag to the engine's image;
    ``published`` is the repository's tags; ``remote_digests`` maps version
    tags to what the registry holds there. With ``from_digests`` the tested
    images are the records' ``repo@digest`` references instead of local
    images, and ``content`` gives, per variant, the identity their merged
    index would have (compared with ``remote_digests``). ``edge`` (a commit)
    publishes a main-branch build: ``sha-<commit>`` and ``edge`` tags only.
    ``lone_manifests`` names version tags that hold one of the tested image's
    own per-platform manifests: ``docker push`` (containerd image store) puts
    each child manifest under the tag before the index, so an interrupted
    push leaves one. Such a tag is completed; a tag holding any other content,
    a lone manifest included, is refused like every overwrite.
    ``unservable`` names version tags whose manifest the registry cannot
    serve (5xx): they are written again.
    """
    lone, broken = set(lone_manifests), set(unservable)
    parsed = str(parse_version(version))
    published = list(published)
    records = list(records)
    releases = []
    overwrites = []
    for variant in catalogue.select(tuple(variants)):
        if not edge:
            check_newer(parsed, published, variant, maintenance=maintenance)
        tags = tags_for(parsed, variant, published, edge=edge, maintenance=maintenance)
        if from_digests:
            sources = _tested_digests(variant.name, variant.platforms, repository, records, parsed)
            local_ref, identity = "", (content or {}).get(variant.name, "")
        else:
            sources = ()
            local_ref = version_tag(repository.name, str(parsed), variant)
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
            held = remote_digests.get(tag)
            if held is not None and held == identity:
                present.append(tag)
            elif held is not None and tag in lone:
                continue  # an interrupted push of this very image: pushing again completes it
            elif held is not None:
                if not force:
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
                sources,
                tuple(repair),
            )
        )
    return PublishPlan(parsed, repository, tuple(releases), tuple(overwrites))


def own_manifests(ref: str, image_id: str) -> frozenset[str]:
    """The per-platform manifests (and attestations) in a local image's index, by digest.

    The engine shows only the index digest; ``docker save`` streams the OCI
    layout, whose blobs come in digest order, and stops once the index is read.
    """
    wanted = f"blobs/sha256/{image_id.split(':')[-1]}"
    save = subprocess.Popen(
        ["docker", "save", ref], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        with tarfile.open(fileobj=save.stdout, mode="r|") as tar:
            for member in tar:
                if member.name == wanted:
                    handle = tar.extractfile(member)
                    index = json.loads(handle.read()) if handle else {}
                    return frozenset(str(m["digest"]) for m in index.get("manifests", ()))
    except (tarfile.TarError, json.JSONDecodeError, OSError):
        pass
    finally:
        save.kill()
        save.wait()
    return frozenset()


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


def _tested_digests(
    variant: str,
    platforms: tuple[str, ...],
    repository: Repository,
    records: list[TestedImage],
    version: str,
) -> tuple[str, ...]:
    """One tested ``repo@digest`` per platform, in platform order, from the records."""
    runs, missing = complete_runs(
        records,
        platforms,
        lambda r: (
            r.variant == variant
            and r.version == version
            and r.ref.startswith(f"{repository.name}@")
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


_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


@contextmanager
def client_config(
    credentials: Credentials | None, registry: str, log: Log = print
) -> Iterator[str | None]:
    """A throwaway docker client config holding one registry's credentials, removed afterwards.

    It is written the way ``docker login`` writes it (base64 ``user:password``
    under ``auths``) but without the CLI, whose "stored unencrypted" warning
    and "Login Succeeded" would only describe this temporary file. The
    credentials were already checked against the registry by then (the
    version check lists its tags with them). Leaving ``DOCKER_CONFIG`` alone
    (no credentials given) keeps an existing login.
    """
    if credentials is None:
        yield None
        return
    auth = credentials.basic().split(" ", 1)[1]
    # Docker Hub's credentials live under its v1 index URL, every other registry's under its host.
    key = "https://index.docker.io/v1/" if registry in _DOCKER_HUB else registry
    with tempfile.TemporaryDirectory(prefix="conjure-login-") as directory:
        config = Path(directory) / "config.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps({"auths": {key: {"auth": auth}}}))
        log(f"pushing as {credentials.username} through a temporary client config (deleted after)")
        yield directory


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


def untested_content(
    release: VariantRelease, index: RemoteManifest, tested: Mapping[str, str | None]
) -> str | None:
    """What in the pushed index is not the tested image, or None when it is exactly that.

    From digests: each platform's image must be the tested one (``tested``,
    by platform). From the engine: the index must be the tested local image.
    """
    if release.sources:
        wrong = [p for p in release.platforms if index.platforms.get(p) != tested.get(p)]
        return (
            ", ".join(
                f"{p} is {(index.platforms.get(p) or 'missing')[:19]}, not the tested "
                f"{(tested.get(p) or 'unknown')[:19]}"
                for p in wrong
            )
            or None
        )
    if index.digest != release.image_id:
        return f"the index is {index.digest[:19]}, not the tested {release.image_id[:19]}"
    return None


def _tested_images(
    release: VariantRelease, repository: Repository, credentials: Credentials | None
) -> dict[str, str | None]:
    """Each platform's tested image: what its tested ``repo@digest`` serves for that platform.

    A by-digest push with an SBOM is an index of the image and its attestation;
    a merge puts the image itself into the new index.
    """
    from conjure_sandbox.registry import platform_image

    return {
        platform: platform_image(repository, source.split("@", 1)[1], platform, credentials)
        for platform, source in zip(release.platforms, release.sources, strict=True)
    }


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
        tested = _tested_images(r, plan.repository, credentials) if r.sources else {}
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


def publish(
    settings: Settings,
    *,
    variants: tuple[str, ...] = (),
    force: bool = False,
    maintenance: bool = False,
    password_stdin: bool = False,
    from_digests: bool = False,
    edge: str = "",
    digest_file: Path | None = None,
    record: Path | None = None,
    dry_run: bool = False,
    log: Log = print,
) -> PublishPlan:
    """check_version, then plan from the engine, the test records and the registry, then push.

    ``from_digests``: the tested images are already in the registry by digest
    (CI's per-platform jobs); merge them into one index per variant instead.
    ``edge``: a main-branch build at that commit. ``digest_file`` receives one
    ``repo@digest`` line per published index; ``record`` the release's pins
    (pins.py): each variant's index and platform digests, for ``invoke pin``.
    """
    from conjure_sandbox import tested, versioncheck
    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.engine import local_images
    from conjure_sandbox.registry import fetch_manifest, parse_repository

    for output in (digest_file, record):
        if output:
            _check_writable(output)
    repository = parse_repository(settings.image)
    catalogue = load_catalogue(docker_dir())
    selected = catalogue.select(variants)
    credentials = credentials_from_env(stdin=password_stdin)
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

    immutable = sorted(
        {
            t
            for v in selected
            for t in tags_for(version, v, published, edge=edge, maintenance=maintenance).immutable
        }
    )
    held, unservable = _version_tags(repository, immutable, credentials)
    content: dict[str, str] = {}
    refs = {v.name: version_tag(repository.name, str(version), v) for v in selected}
    local = {} if from_digests else local_images(refs.values()) or {}
    lone: list[str] = []
    if from_digests:
        # Compared by the image manifests inside: a merged index has no digest before it exists.
        remote = {t: " ".join(sorted(m.images)) if m else None for t, m in held.items()}
        for v in selected:
            sources = _tested_digests(v.name, v.platforms, repository, records, version)
            found = (
                fetch_manifest(repository, ref.split("@", 1)[1], credentials) for ref in sources
            )
            content[v.name] = " ".join(sorted({image for m in found if m for image in m.images}))
    else:
        remote = {t: m.digest if m else None for t, m in held.items()}
        for v in selected:
            tags = tags_for(version, v, published, edge=edge, maintenance=maintenance).immutable
            lone += _interrupted_pushes(tags, held, refs[v.name], local.get(refs[v.name]))
    plan = plan_publish(
        catalogue,
        version=version,
        repository=repository,
        variants=variants,
        local=local,
        records=records,
        published=published,
        remote_digests=remote,
        force=force,
        maintenance=maintenance,
        from_digests=from_digests,
        content=content,
        edge=edge,
        lone_manifests=lone,
        unservable=unservable,
    )
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
            v.name: tags_for(version, v, now, edge=edge, maintenance=maintenance).floating
            for v in selected
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
        digest_file.write_text("".join(f"{repository.name}@{i.digest}\n" for i in indexes.values()))
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
