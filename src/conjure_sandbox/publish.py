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
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from conjure_sandbox.catalogue import Catalogue
from conjure_sandbox.config import Settings
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import Credentials, Repository
from conjure_sandbox.tags import TagSet, check_newer, parse_version, release_tags
from conjure_sandbox.tested import TestedImage, untested_platforms
from conjure_sandbox.uptodate import LocalImage

if TYPE_CHECKING:
    from python_on_whales import DockerClient

Log = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class VariantRelease:
    """One variant's tested local image and the tags it gets."""

    variant: str
    local_ref: str
    image_id: str
    platforms: tuple[str, ...]
    tags: TagSet
    # Version tags the registry already holds at this exact digest: nothing to push.
    present: tuple[str, ...] = ()


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
                state = "already there" if tag in r.present else "push"
                source = f"{r.local_ref} ({r.image_id[:19]})"
                lines.append(f"  {state:<13} {self.repository.name}:{tag} <- {source}")
            lines.append(f"  verify        {', '.join(r.platforms)} in {r.tags.immutable[0]}")
        for tag, digest in self.overwrites:
            lines.append(f"  OVERWRITE     {self.repository.name}:{tag} (now {digest[:19]})")
        for r in self.releases:
            for tag in r.tags.floating:
                lines.append(f"  move          {self.repository.name}:{tag} -> {r.image_id[:19]}")
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
) -> PublishPlan:
    """Decide every push and tag move, or refuse (nothing pushed yet) with the reason and fix.

    ``local`` maps each variant's version tag to the engine's image,
    ``published`` is the repository's tags, ``remote_digests`` maps version
    tags to what the registry holds.
    """
    parsed = str(parse_version(version))
    published = list(published)
    check_newer(parsed, published, maintenance=maintenance)
    records = list(records)
    releases = []
    overwrites = []
    for variant in catalogue.select(tuple(variants)):
        tags = release_tags(parsed, variant, published)
        local_ref = f"{repository.name}:{tags.immutable[0]}"
        image = local.get(local_ref)
        if image is None:
            raise SandboxError(
                f"{local_ref} is not in the engine",
                f"invoke build --variant {variant.name} "
                + " ".join(f"--platform {p}" for p in variant.platforms),
            )
        label = image.labels.get("org.opencontainers.image.version")
        if label != parsed:
            raise SandboxError(
                f"{local_ref} carries version label {label!r}, not {parsed!r}",
                "rebuild it with invoke build, then test it again",
            )
        missing = untested_platforms(records, variant.name, image.id, variant.platforms)
        if missing:
            raise SandboxError(
                f"{local_ref} ({image.id[:19]}) has not passed its image tests on "
                f"{', '.join(missing)}",
                f"nox -s \"test_images(variant='{variant.name}')\" -- --image {repository.name} "
                "(and test_images_arm64 for linux/arm64)",
            )
        present = []
        for tag in tags.immutable:
            held = remote_digests.get(tag)
            if held == image.id:
                present.append(tag)
            elif held is not None:
                if not force:
                    raise SandboxError(
                        f"{repository.name}:{tag} already holds {held[:19]}, not {image.id[:19]}; "
                        "release tags are immutable",
                        "release a new version (invoke release --bump patch); --force "
                        "overwrites it, breaking everyone who pinned it",
                    )
                overwrites.append((tag, held))
        releases.append(
            VariantRelease(
                variant.name, local_ref, image.id, variant.platforms, tags, tuple(present)
            )
        )
    return PublishPlan(parsed, repository, tuple(releases), tuple(overwrites))


@contextmanager
def client_config(credentials: Credentials | None, registry: str) -> Iterator[str | None]:
    """A throwaway docker client config holding one login, removed afterwards.

    ``docker login`` stores the password base64-encoded in config.json; a
    temporary directory keeps it out of the user's own config, and leaving
    ``DOCKER_CONFIG`` alone (no credentials given) keeps an existing login.
    """
    if credentials is None:
        yield None
        return
    from python_on_whales import DockerClient
    from python_on_whales.exceptions import DockerException

    with tempfile.TemporaryDirectory(prefix="conjure-login-") as directory:
        client = DockerClient(config=directory)
        try:
            client.login(registry, credentials.username, credentials.password)
        except DockerException as error:
            reason = (str(error.stderr or "").strip().splitlines() or ["login refused"])[-1]
            if credentials.password in reason:
                reason = reason.replace(credentials.password, "***")
            raise SandboxError(
                f"docker login to {registry} failed ({reason})",
                "check CONJURE_REGISTRY_USER / CONJURE_REGISTRY_PASSWORD",
            ) from None
        yield directory


def _run(step: Callable[[], T], what: str) -> T:
    from python_on_whales.exceptions import DockerException

    try:
        return step()
    except DockerException as error:
        reason = (str(error.stderr or "").strip().splitlines() or ["no reason given"])[-1]
        raise SandboxError(
            f"{what} failed ({reason}); floating tags were not moved",
            "fix the cause and run the same publish again: finished steps are skipped",
        ) from None


def _platforms(client: DockerClient, ref: str) -> set[str]:
    """The platforms in the registry's index for ``ref``, attestations aside."""
    index = client.buildx.imagetools.inspect(ref)
    return {
        f"{m.platform.os}/{m.platform.architecture}"
        for m in index.manifests or ()
        if m.platform and m.platform.os != "unknown"
    }


def execute(plan: PublishPlan, *, config_dir: str | None = None, log: Log = print) -> None:
    """Push version tags, verify every platform landed, then move floating tags by digest."""
    from python_on_whales import DockerClient

    client = DockerClient(config=config_dir) if config_dir else DockerClient()
    repo = plan.repository.name
    for r in plan.releases:
        for tag in r.tags.immutable:
            target = f"{repo}:{tag}"
            if tag in r.present:
                log(f"already there  {target}")
                continue
            if target != r.local_ref:
                _run(partial(client.image.tag, r.local_ref, target), f"tagging {target}")
            log(f"push           {target}")
            _run(partial(client.image.push, target, quiet=True), f"pushing {target}")
        first = f"{repo}:{r.tags.immutable[0]}"
        landed = _run(partial(_platforms, client, first), f"inspecting {first}")
        missing = [p for p in r.platforms if p not in landed]
        if missing:
            raise SandboxError(
                f"{repo}:{r.tags.immutable[0]} lacks {', '.join(missing)} in the registry; "
                "floating tags were not moved",
                "build and test the variant for every platform, then publish again",
            )
        log(f"verified       {repo}:{r.tags.immutable[0]} has {', '.join(sorted(landed))}")
    for r in plan.releases:
        source = f"{repo}@{r.image_id}"
        for tag in r.tags.floating:
            log(f"move           {repo}:{tag} -> {r.image_id[:19]}")
            create = partial(client.buildx.imagetools.create, [source], tags=[f"{repo}:{tag}"])
            _run(create, f"moving {repo}:{tag}")


def credentials_from_env(
    environ: Mapping[str, str] | None = None, stdin: bool = False
) -> Credentials | None:
    """CONJURE_REGISTRY_USER with CONJURE_REGISTRY_PASSWORD, or the password on stdin."""
    env = os.environ if environ is None else environ
    user = env.get("CONJURE_REGISTRY_USER")
    if not user:
        if stdin:
            raise SandboxError("--password-stdin needs a user", "set CONJURE_REGISTRY_USER")
        return None
    password = (
        sys.stdin.readline().rstrip("\n") if stdin else env.get("CONJURE_REGISTRY_PASSWORD", "")
    )
    if not password:
        raise SandboxError(
            "CONJURE_REGISTRY_USER is set without a password",
            "set CONJURE_REGISTRY_PASSWORD or pipe it to --password-stdin",
        )
    return Credentials(user, password)


def publish(
    settings: Settings,
    *,
    variants: tuple[str, ...] = (),
    force: bool = False,
    maintenance: bool = False,
    password_stdin: bool = False,
    dry_run: bool = False,
    log: Log = print,
) -> PublishPlan:
    """check_version, then plan from the engine, the test records and the registry, then push."""
    from conjure_sandbox import tested, versioncheck
    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.registry import list_tags, parse_repository, tag_digest
    from conjure_sandbox.uptodate import local_images
    from conjure_sandbox.version import package_version

    repository = parse_repository(settings.image)
    catalogue = load_catalogue(docker_dir())
    selected = catalogue.select(variants)
    credentials = credentials_from_env(stdin=password_stdin)
    log("# check_version")
    versioncheck.run(settings, log=log, credentials=credentials)
    version = package_version()
    published = list_tags(repository, credentials)
    refs = [f"{repository.name}:{version}{v.tag_suffix}" for v in selected]
    immutable = {t for v in selected for t in release_tags(version, v, published).immutable}
    plan = plan_publish(
        catalogue,
        version=version,
        repository=repository,
        variants=variants,
        local=local_images(refs) or {},
        records=tested.load(settings.tested_directory),
        published=published,
        remote_digests={t: tag_digest(repository, t, credentials) for t in sorted(immutable)},
        force=force,
        maintenance=maintenance,
    )
    log("# plan")
    for line in plan.describe():
        log(line)
    if dry_run:
        return plan
    log("# publish")
    with client_config(credentials, repository.host) as config_dir:
        execute(plan, config_dir=config_dir, log=log)
    log(f"published {version}: {len(plan.releases)} variant(s)")
    return plan
