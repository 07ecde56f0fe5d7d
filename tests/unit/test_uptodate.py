from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from conjure_sandbox.cache import CacheStore
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.engine import LocalImage, local_images
from conjure_sandbox.inputs import INPUTS_LABEL, context_files
from conjure_sandbox.plan import BuildSources, BuildTarget, plan_build
from conjure_sandbox.provenance import Provenance
from conjure_sandbox.request import BuildRequest, Push
from conjure_sandbox.uptodate import is_current

CATALOGUE = load_catalogue(docker_dir())
PROVENANCE = Provenance(version="0.1.0", revision="abc", epoch=1767225600)


def _target(cache_dir: Path) -> BuildTarget:
    plan = plan_build(
        CATALOGUE,
        BuildRequest(variants=("minimal",), platforms=("linux/amd64",)),
        BuildSources(
            image="example/sandbox",
            provenance=PROVENANCE,
            base="b:1",
            base_id="sha256:base",
            context_files={"Dockerfile.minimal": "m"},
            cache_store=CacheStore("local", str(cache_dir)),
        ),
    )
    return plan.targets[0]


def _holding(target: BuildTarget, inputs: str) -> dict[str, LocalImage]:
    return {target.tags[0]: LocalImage(id="sha256:img", labels={INPUTS_LABEL: inputs})}


def _write_cache(target: BuildTarget) -> None:
    dest = Path(dict(p.split("=", 1) for p in target.cache_to[0].split(","))["dest"])
    dest.mkdir(parents=True)
    (dest / "index.json").write_text("{}")


def test_current_when_the_loaded_image_carries_the_same_inputs_and_the_cache_exists(
    tmp_path: Path,
) -> None:
    target = _target(tmp_path)
    _write_cache(target)
    assert is_current(target, _holding(target, target.inputs))


def test_stale_when_inputs_differ_image_missing_or_cache_gone(tmp_path: Path) -> None:
    target = _target(tmp_path)
    assert not is_current(target, _holding(target, target.inputs))  # no cache exported yet
    _write_cache(target)
    assert not is_current(target, _holding(target, "sha256:other"))
    assert not is_current(target, {})


def test_push_and_no_cache_always_build(tmp_path: Path) -> None:
    target = _target(tmp_path)
    _write_cache(target)
    known = _holding(target, target.inputs)
    assert not is_current(replace(target, delivery=Push()), known)
    assert not is_current(replace(target, cache=False), known)


def test_context_files_see_a_one_byte_edit_and_a_new_file(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    first = context_files(tmp_path)
    assert context_files(tmp_path) == first
    (tmp_path / "Dockerfile").write_text("FROM y\n")
    second = context_files(tmp_path)
    assert second["Dockerfile"] != first["Dockerfile"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "extra").write_text("")
    assert set(context_files(tmp_path)) == {"Dockerfile", "sub/extra"}


def test_the_label_stands_for_one_platform_only(tmp_path: Path) -> None:
    """The inputs label leaves platforms out (CI builds each alone): the check does not."""
    target = _target(tmp_path)
    _write_cache(target)
    arm = {target.tags[0]: LocalImage("sha256:img", {INPUTS_LABEL: target.inputs}, "linux/arm64")}
    assert not is_current(target, arm)
    amd = {target.tags[0]: LocalImage("sha256:img", {INPUTS_LABEL: target.inputs}, "linux/amd64")}
    assert is_current(target, amd)
    both = replace(target, platforms=("linux/amd64", "linux/arm64"))
    assert not is_current(both, amd)


def test_the_engines_creation_time_is_read_in_whole_seconds(tmp_path: Path) -> None:
    # A stand-in for the docker CLI: this test is about reading its answer.
    fake = tmp_path / "docker"
    answer = {
        "Id": "sha256:1",
        "RepoTags": ["b:1"],
        "Created": "2026-11-30T15:50:52.883125327Z",
        "Config": {"Labels": None},
    }
    fake.write_text(f"#!/bin/sh\necho '{json.dumps(answer)}'\n")
    fake.chmod(0o755)
    found = local_images(["b:1"], docker=str(fake))
    assert found is not None
    assert found["b:1"].created == 1796053852
