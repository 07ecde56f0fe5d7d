from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conjure_sandbox.basepin import read_base_pin
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.prerequisites import (
    EngineFacts,
    check_dockerfiles,
    check_load,
    check_platform_names,
    check_platforms,
)

AMD64_ONLY = EngineFacts(
    "26.1.5",
    containerd_store=False,
    builder="default",
    driver="docker",
    platforms=("linux/amd64", "linux/386"),
)
FULL = replace(AMD64_ONLY, containerd_store=True, platforms=("linux/amd64", "linux/arm64"))


def test_missing_emulation_names_the_platform_and_the_fix() -> None:
    with pytest.raises(SandboxError) as caught:
        check_platforms(AMD64_ONLY, ["linux/amd64", "linux/arm64"])
    message = str(caught.value)
    assert "cannot build linux/arm64" in message
    assert "provision-engine.sh" in message
    check_platforms(FULL, ["linux/amd64", "linux/arm64"])


def test_multi_platform_load_needs_the_containerd_store() -> None:
    with pytest.raises(SandboxError, match="containerd image store"):
        check_load(AMD64_ONLY, ("linux/amd64", "linux/arm64"), load=True)
    check_load(AMD64_ONLY, ("linux/amd64",), load=True)
    check_load(FULL, ("linux/amd64", "linux/arm64"), load=True)
    container = replace(AMD64_ONLY, driver="docker-container")
    check_load(container, ("linux/amd64", "linux/arm64"), load=False)


def test_the_docker_driver_on_the_classic_store_builds_one_platform_at_a_time() -> None:
    with pytest.raises(SandboxError) as caught:
        check_load(AMD64_ONLY, ("linux/amd64", "linux/arm64"), load=False)
    assert "builds one platform at a time" in str(caught.value)
    assert "pass one --platform" in str(caught.value)
    check_load(AMD64_ONLY, ("linux/amd64",), load=False)
    check_load(FULL, ("linux/amd64", "linux/arm64"), load=False)


def test_missing_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"Dockerfile .*Dockerfile.gpu does not exist"):
        check_dockerfiles([tmp_path / "Dockerfile.gpu"], tmp_path)


def test_settings_from_environment() -> None:
    settings = Settings.from_env({"CONJURE_BASE": "local", "CONJURE_IMAGE": "fork/sb"})
    assert settings.base_image == settings.local_base
    assert settings.uses_local_base
    assert settings.image == "fork/sb"
    assert Settings.from_env({}).base_image == read_base_pin(docker_dir()).ref
    assert Settings.from_env({}).base_image.startswith("debian:trixie-slim@sha256:")
    assert Settings.from_env({"CONJURE_BASE": "corp/debian:13"}).base_image == "corp/debian:13"


@pytest.mark.parametrize(
    ("platform", "problem", "fix"),
    [
        ("linux/amd65", "'linux/amd65' is not a valid platform", "linux/amd64"),
        ("arm64", "'arm64' is an architecture, not a platform", "linux/arm64"),
        ("windows/amd64", "the sandbox images are Linux images", "linux/amd64"),
        ("linux", "'linux' is not a valid platform", "linux/amd64"),
    ],
)
def test_a_misspelled_platform_is_named_as_such(platform: str, problem: str, fix: str) -> None:
    with pytest.raises(SandboxError) as caught:
        check_platform_names(["linux/amd64", platform])
    assert caught.value.problem.endswith(problem) or problem in caught.value.problem
    assert fix in str(caught.value.fix)
    assert "binfmt" not in str(caught.value)


def test_real_platforms_pass() -> None:
    check_platform_names(["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/amd64/v3"])


def test_doctor_names_the_store_and_driver_and_what_the_classic_store_costs() -> None:
    assert AMD64_ONLY.describe() == (
        "engine 26.1.5 (classic image store), builder default (docker driver)"
    )
    overlay = replace(FULL, storage_driver="overlayfs")
    assert "(containerd image store, overlayfs)" in overlay.describe()
    costs = " ".join(AMD64_ONLY.store_costs())
    for lost in ("multi-platform", "build cache export", "SBOM", "config digest"):
        assert lost in costs
    assert FULL.store_costs() == ()
    assert replace(AMD64_ONLY, driver="docker-container").store_costs() == ()
