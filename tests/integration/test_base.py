"""The offline base image: real debootstrap roots, both architectures, slim, pushable."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from conjure_sandbox.config import Settings
from tests.integration.conftest import index_platforms, run_invoke

pytestmark = pytest.mark.docker


def _run_in(image: str, platform: str, script: str) -> str:
    out = subprocess.run(
        ["docker", "run", "--rm", "--platform", platform, image, "bash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    ("platform", "machine"), [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")]
)
def test_local_base_runs_on_both_architectures(
    local_base: str, platform: str, machine: str
) -> None:
    out = _run_in(local_base, platform, ". /etc/os-release; echo $VERSION_CODENAME $(uname -m)")
    assert out == f"trixie {machine}"


def test_local_base_is_slim(local_base: str) -> None:
    script = (
        "find /usr/share/man /usr/share/info -type f | wc -l;"
        "find /usr/share/doc -type f ! -name copyright | wc -l;"
        "ls /usr/share/locale | grep -vx locale.alias | wc -l;"
        "ls /var/lib/apt/lists | wc -l;"
        "cat /etc/dpkg/dpkg.cfg.d/docker-slim | grep -c path-exclude"
    )
    man, docs, locale, lists, excludes = _run_in(local_base, "linux/amd64", script).splitlines()
    assert (man, docs, locale, lists) == ("0", "0", "0", "0")
    assert int(excludes) >= 5


def test_apt_in_the_base_works_and_keeps_no_docs(local_base: str) -> None:
    out = _run_in(
        local_base,
        "linux/amd64",
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends jq >/dev/null "
        "&& jq -n 1 && ls /usr/share/doc/jq && ls /usr/share/man/man1 2>/dev/null | wc -l",
    )
    assert out.splitlines() == ["1", "copyright", "0"]


def test_dry_run_lists_the_steps_and_builds_nothing() -> None:
    result = run_invoke("base", "--dry-run", "--refresh")
    assert result.returncode == 0, result.stderr
    assert "--force-check-gpg --variant=minbase --arch=amd64 trixie" in result.stdout
    assert "--force-check-gpg --variant=minbase --arch=arm64 trixie" in result.stdout


@pytest.mark.registry
def test_push_to_the_loopback_registry_carries_both_platforms() -> None:
    settings = Settings.from_env()
    result = run_invoke("base", "--push")
    assert result.returncode == 0, result.stdout + result.stderr
    ref = f"{settings.registry}/{settings.local_base}"
    assert index_platforms(ref) == {"linux/amd64", "linux/arm64"}


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap needs root")
def test_two_fresh_bases_from_the_same_archive_state_are_identical(tmp_path: Path) -> None:
    """Two ``invoke base --refresh`` runs: the same root tarball, the same image."""
    image = "conjure-sandbox-test/base-repro:0"
    results = []
    for run in ("first", "second"):
        cache = tmp_path / run
        result = run_invoke(
            *("base", "--platform", "linux/amd64", "--refresh"),
            env={"XDG_CACHE_HOME": str(cache), "CONJURE_LOCAL_BASE": image},
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        (tarball,) = (cache / "conjure-sandbox" / "base").glob("rootfs-*-amd64.tar")
        image_id = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        results.append((hashlib.sha256(tarball.read_bytes()).hexdigest(), image_id))
        time.sleep(2)  # the second root's files are made at a later time
    assert results[0] == results[1]
