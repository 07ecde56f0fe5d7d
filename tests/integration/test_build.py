"""``invoke build`` against the real engine and registry.

Multi-platform load and push, failure isolation, the up-to-date check, cache
export, and ``--builder`` on a second builder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.compression import ZSTD, parse_compression
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.ocilayout import OciLayout
from tests.integration.conftest import (
    ROOT,
    index_platforms,
    raw_manifest,
    run_invoke,
    summary_rows,
)

ZSTD_LAYER = ZSTD.layer_media_type

CATALOGUE = load_catalogue(docker_dir())

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_minimal_for_amd64_and_arm64_loads_as_one_image() -> None:
    tag = "conjure-sandbox-test/multi:0"
    result = run_invoke(
        "build",
        *("--variant", "minimal", "--platform", "linux/amd64", "--platform", "linux/arm64"),
        *("--load", "--tag", tag),
        env={"CONJURE_BASE": "local"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "minimal    linux/amd64,linux/arm64" in result.stdout
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        out = subprocess.run(
            [
                *("docker", "run", "--rm", "--platform", platform, f"{tag}-minimal"),
                *("python3", "-c", "import platform; print(platform.machine())"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == machine


def test_one_failing_variant_does_not_stop_the_others(tmp_path: Path) -> None:
    fork = tmp_path / "docker"
    shutil.copytree(docker_dir(), fork)
    broken = fork / "Dockerfile.node"
    # A step of the variant's own, outside the shared layers' regions.
    broken.write_text(broken.read_text() + "RUN echo 'node step broke' >&2 && false\n")
    result = run_invoke(
        "build",
        *("--variant", "node", "--variant", "minimal", "--tag", "conjure-sandbox-test/fail:0"),
        env={"CONJURE_BASE": "local", "CONJURE_DOCKER_DIR": str(fork)},
    )
    assert result.returncode == 1
    summary = result.stdout[result.stdout.index("variant    platforms") :]
    assert "node       linux/amd64" in summary
    assert "FAILED" in summary.splitlines()[1]
    assert summary.splitlines()[2].endswith("ok")
    assert "node step broke" in summary
    assert result.stderr.strip() == "error: build failed for node (fix: see the log tail above)"


def _remove(*refs: str) -> None:
    subprocess.run(["docker", "image", "rm", "--force", *refs], capture_output=True, check=False)


def test_unchanged_variants_are_up_to_date_and_an_edit_rebuilds_only_its_variant(
    tmp_path: Path,
) -> None:
    fork = tmp_path / "docker"
    shutil.copytree(docker_dir(), fork)
    tag = "conjure-sandbox-test/uptodate:0"
    _remove(f"{tag}-node", f"{tag}-minimal")
    args = ("build", "--variant", "node", "--variant", "minimal", "--tag", tag)
    # Outside git the newest file dates the image: pin it, or the edit would date both.
    env = {"CONJURE_BASE": "local", "CONJURE_DOCKER_DIR": str(fork), "SOURCE_DATE_EPOCH": "0"}
    args += ("--cache", str(tmp_path / "cache"))

    first = run_invoke(*args, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert all(row.endswith(" ok") for row in summary_rows(first.stdout).values())
    for variant in ("node", "minimal"):
        assert (tmp_path / "cache" / variant / "linux-amd64" / "index.json").is_file()

    second = run_invoke(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert all(row.endswith("up to date") for row in summary_rows(second.stdout).values())
    assert "built on" not in second.stdout

    dockerfile = fork / "Dockerfile.minimal"
    dockerfile.write_text(dockerfile.read_text() + "# an edit that changes no step\n")
    third = run_invoke(*args, env=env)
    assert third.returncode == 0, third.stderr
    rows = summary_rows(third.stdout)
    assert rows["node"].endswith("up to date")
    assert rows["minimal"].endswith(" ok")
    cached, total = rows["minimal"].split()[-2].split("/")
    assert cached == total != "0"


@pytest.fixture
def second_builder() -> Iterator[str]:
    """A second buildx builder: a docker context on the same engine (docker driver).

    A docker-container or remote builder needs the moby/buildkit image from
    Docker Hub, which this machine cannot reach.
    """
    name = "conjure-second"
    subprocess.run(["docker", "context", "rm", "--force", name], capture_output=True, check=False)
    subprocess.run(
        ["docker", "context", "create", name, "--docker", "host=unix:///var/run/docker.sock"],
        capture_output=True,
        check=True,
    )
    yield name
    subprocess.run(["docker", "context", "rm", "--force", name], capture_output=True, check=False)


def test_builder_option_runs_the_plan_on_the_named_builder(second_builder: str) -> None:
    tag = "conjure-sandbox-test/second:0"
    _remove(f"{tag}-minimal")
    result = run_invoke(
        *("build", "--variant", "minimal", "--tag", tag, "--cache", "none"),
        *("--builder", second_builder),
        env={"CONJURE_BASE": "local"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert f"[minimal] built on {second_builder}/{second_builder}" in result.stdout
    assert summary_rows(result.stdout)["minimal"].endswith(" ok")

    missing = run_invoke(
        "build",
        "--variant",
        "minimal",
        "--builder",
        "conjure-nosuch",
        env={"CONJURE_BASE": "local"},
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: buildx builder 'conjure-nosuch' is not usable")
    assert len(missing.stderr.strip().splitlines()) == 1


# Two variants, the small ones: full and python for arm64 under QEMU took 28 of this
# test's 30 minutes on a fresh machine; ci.yml builds and tests them on native arm64.
PUSHED = ("minimal", "node")


@pytest.mark.registry
def test_push_two_variants_for_two_platforms_gives_one_index_each() -> None:
    registry = Settings.from_env().registry
    prefix = f"{registry}/conjure-sandbox-test/index:0"
    result = run_invoke(
        *("build", *(f"--variant={name}" for name in PUSHED)),
        *("--platform", "linux/amd64", "--platform", "linux/arm64"),
        *("--push", "--tag", prefix, "--progress", "quiet"),
        env={"CONJURE_BASE": "local"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    rows = summary_rows(result.stdout)
    assert set(rows) == set(PUSHED)
    for variant in load_catalogue(docker_dir()).select(PUSHED):
        platforms = index_platforms(f"{prefix}{variant.tag_suffix}", attestations=True)
        # The provenance attestation rides in the index as an unknown/unknown manifest.
        assert platforms == {"linux/amd64", "linux/arm64", "unknown/unknown"}
        sizes = [float(mb) for mb in rows[variant.name].split()[3].split("/")]
        assert len(sizes) == 2
        assert min(sizes) > 1
        # The layout upload carries zstd layers, the default, to the registry as they are.
        index = raw_manifest(f"{prefix}{variant.tag_suffix}")
        repository = prefix.rsplit(":", 1)[0]
        for entry in index["manifests"]:
            if entry["platform"]["os"] == "unknown":
                continue
            manifest = raw_manifest(f"{repository}@{entry['digest']}")
            assert {layer["mediaType"] for layer in manifest["layers"]} == {ZSTD_LAYER}


@pytest.mark.registry
def test_registry_cache_lands_in_its_variant_and_platform_tag() -> None:
    registry = Settings.from_env().registry
    repository = f"{registry}/conjure-sandbox-test/cache"
    tag = "conjure-sandbox-test/registry-cache:0"
    _remove(f"{tag}-minimal")
    result = run_invoke(
        *("build", "--variant", "minimal", "--tag", tag, "--cache", repository),
        env={"CONJURE_BASE": "local"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    found = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--raw", f"{repository}:minimal-linux-amd64"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    cached = json.loads(found.stdout)  # BuildKit lists a registry cache's layers as an index
    entries = [*cached.get("manifests", ()), *cached.get("layers", ())]
    layers = [d for d in entries if ".layer." in d["mediaType"]]
    assert layers
    assert {d["mediaType"] for d in layers} == {ZSTD_LAYER}, "the cache is not compressed as images"


def test_a_cache_export_that_fails_leaves_the_image_built() -> None:
    """Nothing listens on port 1: the cache export fails, every time, after the image is made."""
    tag = "conjure-sandbox-test/cache-fault:0"
    _remove(f"{tag}-minimal")
    result = run_invoke(
        *("build", "--variant", "minimal", "--tag", tag),
        *("--cache", "127.0.0.1:1/conjure-sandbox-test/cache"),
        env={"CONJURE_BASE": "local"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert summary_rows(result.stdout)["minimal"].endswith(" ok, cache not exported")
    warning = "[minimal] warning: the image is built but its cache was not exported: "
    (reason,) = [line for line in result.stdout.splitlines() if line.startswith(warning)]
    assert "127.0.0.1:1" in reason
    found = subprocess.run(["docker", "image", "inspect", f"{tag}-minimal"], capture_output=True)
    assert found.returncode == 0, found.stderr


@pytest.mark.parametrize(
    ("args", "variants"),
    [(("--variant", "minimal"), {"minimal"}), ((), {v.name for v in CATALOGUE})],
)
def test_the_readme_build_command_builds_what_it_names(
    args: tuple[str, ...], variants: set[str]
) -> None:
    """``scripts/dev.sh build`` builds every variant, or only those its options name."""
    result = subprocess.run(
        ["scripts/dev.sh", "build", *args, "--dry-run"],
        cwd=ROOT,
        env={**os.environ, "CONJURE_BASE": "local"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    planned = {v.name for v in CATALOGUE if f"--file {v.dockerfile} " in result.stdout}
    assert planned == variants


def _layer_media_types(ref: str, tmp_path: Path) -> set[str]:
    """What the engine stores for ``ref``'s layers, read from ``docker save``'s layout."""
    saved = tmp_path / f"saved-{time.monotonic_ns()}.tar"
    subprocess.run(["docker", "image", "save", "--output", str(saved), ref], check=True)
    with OciLayout(saved) as oci:
        top = oci.root()
        root = json.loads(oci.blob(top["digest"]))
        manifests = [
            json.loads(oci.blob(m["digest"]))
            for m in root.get("manifests", [top])
            if m.get("platform", {}).get("os") != "unknown"
        ]
    return {layer["mediaType"] for m in manifests for layer in m["layers"]}


def test_zstd_by_default_gzip_on_request_and_a_switch_is_not_up_to_date(tmp_path: Path) -> None:
    tag = "conjure-sandbox-test/compression:0"
    _remove(f"{tag}-minimal")
    args = ("build", "--variant", "minimal", "--tag", tag, "--no-sbom")
    env = {"CONJURE_BASE": "local"}
    try:
        for compression in ("zstd", "gzip", "zstd"):
            built = run_invoke(*args, "--compression", compression, env=env)
            assert built.returncode == 0, built.stdout[-3000:] + built.stderr
            assert summary_rows(built.stdout)["minimal"].endswith(" ok")  # never "up to date"
            media = parse_compression(compression).layer_media_type
            assert _layer_media_types(f"{tag}-minimal", tmp_path) == {media}
        again = run_invoke(*args, env=env)  # the default is the zstd just built
        assert summary_rows(again.stdout)["minimal"].endswith("up to date"), again.stdout
        wrong = run_invoke(*args, "--compression", "xz", env=env)
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == (
            "error: compression 'xz' (--compression or CONJURE_COMPRESSION) is not known "
            "(fix: use one of zstd, gzip)"
        )
    finally:
        _remove(f"{tag}-minimal")
