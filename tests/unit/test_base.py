from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conjure_sandbox.base import (
    describe,
    fix_shadow_days,
    plan_base,
    release_epoch,
    slim_root,
    tar_argv,
)
from conjure_sandbox.basechoice import choose_base
from conjure_sandbox.errors import SandboxError

UPSTREAM, LOCAL = "debian:trixie-slim", "conjure-sandbox/base:trixie-slim"


def _choose(present: set[str], pullable: set[str], **kw: bool) -> tuple[str, list[str]]:
    warnings: list[str] = []
    chosen = choose_base(
        wanted=str(kw.pop("wanted", UPSTREAM)),
        local_base=LOCAL,
        explicit=kw.pop("explicit", False),
        publishing=kw.pop("publishing", False),
        is_present=present.__contains__,
        is_pullable=pullable.__contains__,
        warn=warnings.append,
    )
    return chosen, warnings


def test_upstream_used_when_present_or_pullable() -> None:
    assert _choose({UPSTREAM}, set()) == (UPSTREAM, [])
    assert _choose(set(), {UPSTREAM}) == (UPSTREAM, [])


def test_unpullable_upstream_falls_back_to_local_loudly() -> None:
    chosen, warnings = _choose({LOCAL}, set())
    assert chosen == LOCAL
    assert len(warnings) == 1
    assert "cannot be pulled" in warnings[0]
    assert "CONJURE_BASE=local" in warnings[0]


def test_publishing_never_falls_back() -> None:
    with pytest.raises(SandboxError, match="publishing never falls back"):
        _choose({LOCAL}, set(), publishing=True)


def test_explicit_base_is_used_as_named_or_not_at_all() -> None:
    with pytest.raises(SandboxError, match="cannot be pulled"):
        _choose({LOCAL}, set(), wanted="corp/debian:13", explicit=True)


@pytest.mark.parametrize(
    ("present", "message"),
    [
        (set(), "local base conjure-sandbox/base:trixie-slim is missing"),
    ],
)
def test_nothing_usable_names_invoke_base(present: set[str], message: str) -> None:
    with pytest.raises(SandboxError, match=message) as caught:
        _choose(present, set())
    assert "invoke base" in str(caught.value)


def test_missing_local_base_says_run_invoke_base() -> None:
    with pytest.raises(SandboxError) as caught:
        _choose(set(), set(), wanted=LOCAL, explicit=True)
    assert str(caught.value) == f"base image {LOCAL} not found (fix: run `invoke base` to build it)"


def test_plan_names_one_tarball_per_arch_and_rejects_non_linux(tmp_path: Path) -> None:
    plan = plan_base(
        image="b:1",
        platforms=("linux/amd64", "linux/arm64"),
        suite="trixie",
        mirror="http://m/debian",
        cache_dir=tmp_path,
    )
    assert plan.architectures == ("amd64", "arm64")
    assert plan.tarball("arm64") == tmp_path / "rootfs-trixie-arm64.tar"
    lines = describe(plan)
    assert any("--variant=minbase --arch=arm64 trixie" in line for line in lines)
    # The archive's signatures are checked, never skipped when the keyring is missing.
    keyring = "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg --force-check-gpg"
    assert all(keyring in line for line in lines if "debootstrap" in line)
    with pytest.raises(SandboxError, match="not linux"):
        plan_base(image="b", platforms=("windows/amd64",), suite="t", mirror="m")


def test_root_tarball_depends_on_content_only(tmp_path: Path) -> None:
    """Same files, touched again (new change and access times, newer mtimes): same bytes."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "etc/motd").write_text("hi\n")
    os.utime(root / "etc/motd", (1000, 1000))

    def tarball(name: str) -> str:
        subprocess.run(tar_argv(root, tmp_path / name, 5000), check=True)
        return hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()

    first = tarball("a.tar")
    time.sleep(1.1)
    (root / "etc/os-release").chmod(0o600)
    (root / "etc/os-release").chmod(0o644)
    (root / "etc/os-release").read_text()
    os.utime(root / "etc/os-release")  # now: later than the epoch, clamped
    assert tarball("b.tar") == first
    with tarfile.open(tmp_path / "b.tar") as archive:
        times = {m.name: m.mtime for m in archive}
    assert times["./etc/os-release"] == 5000
    assert times["./etc/motd"] == 1000


def test_release_date_is_the_roots_epoch(tmp_path: Path) -> None:
    lists = tmp_path / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "deb.debian.org_debian_dists_trixie_InRelease").write_text(
        "-----BEGIN PGP SIGNED MESSAGE-----\nOrigin: Debian\n"
        "Date: Sat, 15 Nov 2025 09:12:04 UTC\nSuite: stable\n"
    )
    assert release_epoch(tmp_path) == 1763197924
    (lists / "deb.debian.org_debian_dists_trixie_InRelease").write_text("Origin: Debian\n")
    with pytest.raises(SandboxError, match="no Release file with a Date"):
        release_epoch(tmp_path)


def test_shadow_days_follow_the_epoch(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/shadow").write_text("root:*:20412:0:99999:7:::\nnobody:*::0:99999:7:::\n")
    fix_shadow_days(tmp_path, 1763197924)
    assert (tmp_path / "etc/shadow").read_text() == (
        "root:*:20407:0:99999:7:::\nnobody:*::0:99999:7:::\n"
    )


def test_slim_root_drops_docs_man_locales_and_host_files(tmp_path: Path) -> None:
    root = tmp_path
    for rel in (
        "usr/share/doc/bash/README",
        "usr/share/doc/bash/copyright",
        "usr/share/man/man1/bash.1.gz",
        "usr/share/locale/de/LC_MESSAGES/bash.mo",
        "usr/share/locale/locale.alias",
        "var/lib/apt/lists/deb.debian.org_Packages",
        "var/log/dpkg.log",
        "etc/resolv.conf",
        "etc/apt/sources.list",
        "etc/apt/apt.conf.d/.keep",
        "etc/apt/sources.list.d/.keep",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("host data")
    slim_root(root, "trixie", "http://m/debian")
    assert (root / "usr/share/doc/bash/copyright").exists()
    assert not (root / "usr/share/doc/bash/README").exists()
    assert not list((root / "usr/share/man").iterdir())
    assert [p.name for p in (root / "usr/share/locale").iterdir()] == ["locale.alias"]
    assert not list((root / "var/lib/apt/lists").iterdir())
    assert (root / "etc/resolv.conf").read_text() == ""
    assert not (root / "etc/apt/sources.list").exists()
    sources = (root / "etc/apt/sources.list.d/debian.sources").read_text()
    assert "Suites: trixie trixie-updates" in sources
    assert "trixie-security" in sources
    assert "path-exclude /usr/share/doc/*" in (root / "etc/dpkg/dpkg.cfg.d/docker-slim").read_text()
