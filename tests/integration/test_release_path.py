"""The release path takes only what this run built and tested: resume and merge, refused.

Real registries on loopback; the images are small OCI layouts written by hand
(tests/ocilayout.py), pushed by digest as CI's build jobs push theirs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conjure_sandbox.basepin import read_base_pin
from conjure_sandbox.config import Settings
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.publish import execute
from conjure_sandbox.publishplan import PublishPlan, VariantRelease
from conjure_sandbox.registry import Credentials, Repository, list_tags, push_layout
from conjure_sandbox.resume import resume
from conjure_sandbox.tags import TagSet
from conjure_sandbox.version import package_version
from tests.integration.conftest import Registry, run_invoke
from tests.ocilayout import write_layout

pytestmark = pytest.mark.registry

PLATFORMS = ("linux/amd64", "linux/arm64")
PATH = "conjure-test/release-path"


def _pushed(
    repository: Repository, directory: Path, seed: str, tag: str | None = None
) -> dict[str, str]:
    """Push an index of both platforms (tagged or by digest only); its platform digests."""
    layout = directory / f"{seed}.tar"
    _, children = write_layout(layout, PLATFORMS, seed)
    push_layout(layout, repository, tag=tag)
    return children


def test_resume_refuses_an_image_someone_else_pushed_under_the_version_tag(
    make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    registry = make_registry(5050)
    repository = Repository(registry.host, PATH)
    settings = Settings(image=repository.name)
    tag = f"{package_version()}-minimal"
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    ours = _pushed(repository, tmp_path, "built by this run")
    (recorded / "minimal-linux-arm64").write_text(f"{repository.name}@{ours['linux/arm64']}\n")

    # Before anyone tags it: the recorded image is resumed, nothing else is.
    path = resume(
        settings,
        variant="minimal",
        platform="linux/arm64",
        digest_dir=tmp_path / "d",
        recorded=recorded,
    )
    assert path is not None
    assert path.read_text().strip() == f"{repository.name}@{ours['linux/arm64']}"
    assert (
        resume(
            settings,
            variant="minimal",
            platform="linux/amd64",
            digest_dir=tmp_path / "e",
            recorded=recorded,
        )
        is None
    )

    theirs = _pushed(repository, tmp_path, "pushed by someone else", tag=tag)
    for platform in PLATFORMS:  # recorded or not, the stranger's image is refused
        with pytest.raises(SandboxError, match="which this run did not build") as refused:
            resume(
                settings,
                variant="minimal",
                platform=platform,
                digest_dir=tmp_path / "f",
                recorded=recorded,
            )
        assert theirs[platform][:19] in str(refused.value)
        assert "\n" not in str(refused.value)
    assert not (tmp_path / "f").exists()

    (recorded / "minimal-linux-arm64").write_text("ghcr.io/elsewhere/image@sha256:" + "0" * 64)
    with pytest.raises(SandboxError, match=re.escape(f"not a {repository.name}@")):
        resume(
            settings,
            variant="minimal",
            platform="linux/arm64",
            digest_dir=tmp_path / "g",
            recorded=recorded,
        )


def test_the_merge_refuses_an_index_whose_platform_image_is_not_the_tested_one(
    make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    registry = make_registry(5051)
    repository = Repository(registry.host, PATH)
    tag = f"{package_version()}-minimal"
    tested = _pushed(repository, tmp_path, "tested")
    # Someone wrote the version tag after the plan read it: another arm64 image inside.
    swapped = _pushed(repository, tmp_path, "swapped", tag=tag)
    release = VariantRelease(
        variant="minimal",
        local_ref="",
        image_id="",
        platforms=PLATFORMS,
        tags=TagSet((tag,), ("minimal",)),
        present=(tag,),
        sources=tuple(f"{repository.name}@{tested[p]}" for p in PLATFORMS),
    )
    said: list[str] = []
    with pytest.raises(SandboxError, match="does not hold the tested image") as refused:
        execute(PublishPlan(package_version(), repository, (release,)), log=said.append)
    message = str(refused.value)
    assert f"linux/arm64 is {swapped['linux/arm64'][:19]}, not the tested" in message
    assert "floating tags were not moved and nothing was signed" in message
    assert set(list_tags(repository)) == {tag}
    assert not any(line.startswith("move") for line in said)


def test_base_pin_moves_to_what_the_tag_holds_and_says_what_changed(
    make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    registry = make_registry(5052)
    name = f"{registry.host}/library/debian"
    old = "sha256:" + "0" * 64
    docker = tmp_path / "docker"
    docker.mkdir()
    lock = docker / "base.lock"
    lock.write_text(f"# pinned\n{name}:trixie-slim@{old}\n")
    layout = tmp_path / "base.tar"
    new, _ = write_layout(layout, PLATFORMS, "a newer trixie-slim")
    push_layout(layout, Repository(registry.host, "library/debian"), tag="trixie-slim")
    env = {"CONJURE_DOCKER_DIR": str(docker)}

    dry = run_invoke("base-pin", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"{name}:trixie-slim: {old} -> {new} (linux/amd64, linux/arm64)" in dry.stdout
    assert old in lock.read_text()

    moved = run_invoke("base-pin", env=env)
    assert moved.returncode == 0, moved.stderr
    assert f"{old} -> {new}" in moved.stdout
    assert read_base_pin(docker).ref == f"{name}:trixie-slim@{new}"

    again = run_invoke("base-pin", env=env)
    assert f"still holds {new}" in again.stdout
    assert "nothing changed" in again.stdout

    registry.stop()
    down = run_invoke("base-pin", env=env)
    assert down.returncode == 1
    *retries, line = down.stderr.strip().splitlines()  # the retries said, then one line
    assert all(r.startswith("warning: ") for r in retries)
    assert line.startswith("error: ")
    assert "registry unreachable after 3 tries" in line


def test_base_pin_sends_the_publish_credentials_only_to_the_publish_registry(
    make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    users = {"maint": "publish-password"}
    registry = make_registry(5054, users=users)
    credentials = Credentials("maint", "publish-password", registry.host)
    docker = tmp_path / "docker"
    docker.mkdir()
    layout = tmp_path / "base.tar"
    digest, _ = write_layout(layout, PLATFORMS, "trixie-slim")
    push_layout(layout, Repository(registry.host, "library/debian"), credentials, tag="t")
    (docker / "base.lock").write_text(f"{registry.host}/library/debian:t@{'sha256:' + '0' * 64}\n")
    env = {
        "CONJURE_DOCKER_DIR": str(docker),
        "CONJURE_REGISTRY_USER": "maint",
        "CONJURE_REGISTRY_PASSWORD": "publish-password",
    }

    # Images published elsewhere: the base's registry never gets that password.
    elsewhere = run_invoke("base-pin", "--dry-run", env={**env, "CONJURE_IMAGE": "ghcr.io/x/y"})
    assert elsewhere.returncode == 1
    assert "needs credentials" in elsewhere.stderr.strip().splitlines()[-1]

    home = run_invoke("base-pin", "--dry-run", env={**env, "CONJURE_IMAGE": f"{registry.host}/x/y"})
    assert home.returncode == 0, home.stderr
    assert f"-> {digest}" in home.stdout
