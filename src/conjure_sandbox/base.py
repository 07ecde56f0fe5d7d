"""The offline base image: Debian built from the Debian archive, no Docker Hub.

``plan_base`` decides what to do (pure); ``build_base`` does it: debootstrap a
minbase root per architecture, slim it the way the official ``-slim`` images
are, pack each into ``rootfs-<arch>.tar`` and build one multi-platform image
``FROM scratch`` + ``ADD rootfs-$TARGETARCH.tar /``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from conjure_sandbox.config import ARCHIVE_KEYRING, Settings
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import credentials_from_env, parse_repository, push_layout
from conjure_sandbox.tags import split_tag

# Kept out of the root by dpkg from now on, as in Debian's -slim images.
DPKG_EXCLUDES = """\
# Slim image: no docs, man pages or translations (copyright files stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""

APT_SETTINGS = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}

# Removed after debootstrap: what dpkg already unpacked before the excludes existed,
# plus caches and logs that would otherwise ship in the layer.
SLIM_GLOBS = (
    "usr/share/man/*",
    "usr/share/groff/*",
    "usr/share/info/*",
    "usr/share/lintian/*",
    "usr/share/linda/*",
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/log/*",
    "var/cache/ldconfig/aux-cache",
    "tmp/*",
)

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
ADD rootfs-${TARGETARCH}.tar /
CMD ["bash"]
"""


@dataclass(frozen=True)
class BasePlan:
    """What ``invoke base`` will do."""

    suite: str
    mirror: str
    platforms: tuple[str, ...]
    image: str
    cache_dir: Path
    push: bool
    refresh: bool
    source_date_epoch: int | None

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(architecture(p) for p in self.platforms)

    def tarball(self, arch: str) -> Path:
        return self.cache_dir / f"rootfs-{self.suite}-{arch}.tar"


def architecture(platform: str) -> str:
    """``linux/arm64`` -> ``arm64``; only linux platforms make sense here."""
    parts = platform.split("/")
    if len(parts) < 2 or parts[0] != "linux":
        raise SandboxError(f"platform {platform!r} is not linux/<arch>", "use e.g. linux/amd64")
    return parts[1]


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int | None:
    """SOURCE_DATE_EPOCH as an integer, when set: it clamps file times in the root tarballs."""
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH")
    return int(value) if value else None


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "conjure-sandbox" / "base"


def plan_base(
    *,
    image: str,
    platforms: tuple[str, ...],
    suite: str,
    mirror: str,
    push: bool = False,
    refresh: bool = False,
    cache_dir: Path | None = None,
    source_date_epoch: int | None = None,
) -> BasePlan:
    """Validate the options and settle every name and path."""
    if not platforms:
        raise SandboxError("no platform to build the base for", "pass --platform linux/amd64")
    for platform in platforms:
        architecture(platform)
    return BasePlan(
        suite=suite,
        mirror=mirror,
        platforms=platforms,
        image=image,
        cache_dir=cache_dir or default_cache_dir(),
        push=push,
        refresh=refresh,
        source_date_epoch=source_date_epoch,
    )


def debootstrap_argv(plan: BasePlan, arch: str, root: Path) -> list[str]:
    """debootstrap, refusing a Release file the Debian archive keyring did not sign."""
    return [
        "debootstrap",
        f"--keyring={ARCHIVE_KEYRING}",
        "--force-check-gpg",
        "--variant=minbase",
        f"--arch={arch}",
        plan.suite,
        str(root),
        plan.mirror,
    ]


def tar_argv(root: Path, out: Path, epoch: int) -> list[str]:
    """A tarball that depends on the root's content only: names sorted, times clamped to
    ``epoch``, and no access or change times (``--xattrs`` writes pax headers that
    would carry them)."""
    return [
        "tar",
        f"--mtime=@{epoch}",
        "--clamp-mtime",
        "--numeric-owner",
        "--xattrs",
        "--pax-option=delete=atime,delete=ctime",
        "--sort=name",
        "-C",
        str(root),
        "-cf",
        str(out),
        ".",
    ]


def release_epoch(root: Path) -> int:
    """The ``Date:`` of the suite's Release file debootstrap fetched into ``root``.

    It names the archive state the root was made from, so two roots made from
    the same state get the same time stamps, whatever day they were made on.
    """
    lists = root / "var/lib/apt/lists"
    for release in sorted(lists.glob("*_InRelease")) + sorted(lists.glob("*_Release")):
        for line in release.read_text(errors="replace").splitlines():
            if line.startswith("Date:"):
                return int(parsedate_to_datetime(line[5:].strip()).timestamp())
    raise SandboxError(
        f"debootstrap left no Release file with a Date in {lists}",
        "set SOURCE_DATE_EPOCH, or rerun `invoke base --refresh`",
    )


def fix_shadow_days(root: Path, epoch: int) -> None:
    """Every account's last password change on the day of ``epoch``, not of the build."""
    shadow = root / "etc/shadow"
    if not shadow.is_file():
        return
    day = str(epoch // 86400)
    lines = []
    for line in shadow.read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2]:
            fields[2] = day
        lines.append(":".join(fields))
    shadow.write_text("".join(f"{line}\n" for line in lines))


def describe(plan: BasePlan) -> list[str]:
    """The steps, one line each, for ``--dry-run`` and the log."""
    lines = []
    for arch in plan.architectures:
        tarball = plan.tarball(arch)
        if tarball.is_file() and not plan.refresh:
            lines.append(f"reuse {tarball}")
        else:
            lines.append(" ".join(debootstrap_argv(plan, arch, Path(f"<tmp>/{arch}"))))
            lines.append(
                f"slim the root (dpkg excludes, no docs/man/locales/apt lists) -> {tarball}"
            )
    output = "push to the registry" if plan.push else "load into the engine"
    lines.append(
        f"docker buildx build --platform {','.join(plan.platforms)} -t {plan.image} "
        f"({output}) FROM scratch + ADD rootfs-$TARGETARCH.tar"
    )
    return lines


def slim_root(root: Path, suite: str, mirror: str) -> None:
    """Make a debootstrap root look like an official -slim image."""
    (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(DPKG_EXCLUDES)
    for name, text in APT_SETTINGS.items():
        (root / "etc/apt/apt.conf.d" / name).write_text(text)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        f"Signed-By: {ARCHIVE_KEYRING}\n\n"
        f"Types: deb\nURIs: {mirror}-security\nSuites: {suite}-security\nComponents: main\n"
        f"Signed-By: {ARCHIVE_KEYRING}\n"
    )
    doc = root / "usr/share/doc"
    for path in doc.glob("*/*") if doc.is_dir() else ():
        if path.name != "copyright":
            _remove(path)
    locale = root / "usr/share/locale"
    for path in locale.glob("*") if locale.is_dir() else ():
        if path.name != "locale.alias":
            _remove(path)
    for pattern in SLIM_GLOBS:
        for path in root.glob(pattern):
            _remove(path)
    # The engine provides these per container; the host's copies must not ship.
    for name in ("etc/resolv.conf", "etc/hostname"):
        (root / name).unlink(missing_ok=True)
        (root / name).write_text("")
    (root / "etc/machine-id").write_text("")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _run(argv: list[str], log: Callable[[str], None]) -> None:
    log("$ " + " ".join(argv))
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise SandboxError(
            f"{argv[0]} failed: {tail}", "see the command above; rerun with --refresh"
        )


def make_rootfs(plan: BasePlan, arch: str, log: Callable[[str], None]) -> Path:
    """debootstrap + slim + tar one architecture, reusing the cached tarball."""
    tarball = plan.tarball(arch)
    if tarball.is_file() and not plan.refresh:
        log(f"{arch}: reusing {tarball}")
        return tarball
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed", "apt-get install debootstrap")
    if not Path(ARCHIVE_KEYRING).is_file() or shutil.which("gpgv") is None:
        raise SandboxError(
            f"cannot check the Debian archive's signatures: {ARCHIVE_KEYRING} or gpgv is missing",
            "apt-get install debian-archive-keyring gpgv",
        )
    plan.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=plan.cache_dir, prefix=f"root-{arch}-") as tmp:
        root = Path(tmp) / "root"
        _run(debootstrap_argv(plan, arch, root), log)
        epoch = plan.source_date_epoch or release_epoch(root)
        slim_root(root, plan.suite, plan.mirror)
        fix_shadow_days(root, epoch)
        partial = tarball.with_suffix(".partial")
        _run(tar_argv(root, partial, epoch), log)
        partial.replace(tarball)
    log(f"{arch}: {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
    return tarball


def build_base(plan: BasePlan, log: Callable[[str], None]) -> None:
    """Run the plan: root file systems first, then one multi-platform image."""
    from python_on_whales import docker

    tarballs = [make_rootfs(plan, arch, log) for arch in plan.architectures]
    with tempfile.TemporaryDirectory(prefix="conjure-base-") as context:
        for tarball, arch in zip(tarballs, plan.architectures, strict=True):
            os.link(tarball, Path(context) / f"rootfs-{arch}.tar")
        (Path(context) / "Dockerfile").write_text(DOCKERFILE)
        log(f"building {plan.image} for {', '.join(plan.platforms)}")
        # The image's creation time is its roots' newest file: the same roots give
        # the same image. Exported as a layout, then loaded or uploaded, as the
        # variants are: the digests stay those BuildKit computed.
        epoch = max(map(newest_mtime, tarballs))
        layout = Path(context) / "base.oci.tar"
        docker.buildx.build(
            context,
            platforms=list(plan.platforms),
            build_args={"SOURCE_DATE_EPOCH": str(epoch)},
            output={
                "type": "oci",
                "dest": str(layout),
                "name": plan.image,
                "rewrite-timestamp": "true",
                "source-date-epoch": str(epoch),
            },
            provenance=False,
            progress=False,
        )
        if plan.push:
            repository, tag = split_tag(plan.image)
            credentials = credentials_from_env(Settings.from_env().image)
            push_layout(layout, parse_repository(repository), credentials, tag=tag)
        else:
            docker.image.load(layout, quiet=True)
    log(f"{plan.image}: {'pushed' if plan.push else 'loaded'}")


def newest_mtime(tarball: Path) -> int:
    """The newest modification time of any member: the epoch a root was clamped to."""
    with tarfile.open(tarball) as archive:
        return max((int(member.mtime) for member in archive), default=0)


def make_base(plan: BasePlan, *, dry_run: bool = False, log: Callable[[str], None] = print) -> None:
    """``invoke base``: print the plan, check what it needs, then build unless ``dry_run``."""
    from python_on_whales import docker

    from conjure_sandbox import prerequisites

    for line in describe(plan):
        log(("would: " if dry_run else "plan: ") + line)
    if dry_run:
        return
    facts = prerequisites.probe(docker)
    prerequisites.check_platforms(facts, plan.platforms)
    prerequisites.check_load(facts, plan.platforms, not plan.push)
    needs_root = any(plan.refresh or not plan.tarball(a).is_file() for a in plan.architectures)
    if needs_root and os.geteuid() != 0:
        raise SandboxError("debootstrap needs root", "run `sudo -E invoke base`")
    build_base(plan, log)
