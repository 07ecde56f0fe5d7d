from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.provenance import input_paths, read_provenance

CATALOGUE = load_catalogue(docker_dir())


def _commit(repo: Path, message: str, when: int) -> str:
    stamp = f"@{when} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True, env=env)
    subprocess.run([*git, "commit", "-qm", message], check=True, env=env)
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_each_variant_dates_from_the_last_commit_that_changed_its_own_inputs(
    tmp_path: Path,
) -> None:
    docker = tmp_path / "docker"
    (docker / "layers").mkdir(parents=True)
    for name in ("Dockerfile", "Dockerfile.python", "Dockerfile.node", "Dockerfile.minimal"):
        (docker / name).write_text(f"# {name}\n")
    (docker / "requirements.lock").write_text("a==1\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    first = _commit(tmp_path, "all", 1_700_000_000)
    (docker / "Dockerfile.node").write_text("# node, edited\n")
    node_edit = _commit(tmp_path, "node only", 1_700_000_100)
    (docker / "layers" / "tools.dockerfile").write_text("# a layer, text copied elsewhere\n")
    _commit(tmp_path, "a layer file", 1_700_000_200)

    def provenance(variant: str) -> tuple[str, int]:
        found = read_provenance(
            "1.0.0", docker, input_paths(CATALOGUE, CATALOGUE.get(variant)), environ={}
        )
        return found.revision, found.epoch

    assert provenance("node") == (node_edit, 1_700_000_100)
    for variant in ("full", "python", "minimal"):
        assert provenance(variant) == (first, 1_700_000_000)

    (docker / "requirements.lock").write_text("a==2\n")  # shared, uncommitted
    assert provenance("minimal") == (f"{first}-dirty", 1_700_000_000)
    lock = _commit(tmp_path, "lock", 1_700_000_300)
    assert {provenance(v) for v in CATALOGUE.names} == {(lock, 1_700_000_300)}
    overridden = read_provenance("1.0.0", docker, environ={"SOURCE_DATE_EPOCH": "5"})
    assert overridden.epoch == 5
    assert overridden.created == "1970-01-01T00:00:05Z"


def test_a_shallow_clone_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "docker").mkdir(parents=True)
    (source / "docker" / "Dockerfile").write_text("# one\n")
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    _commit(source, "one", 1_700_000_000)
    (source / "docker" / "Dockerfile").write_text("# two\n")
    _commit(source, "two", 1_700_000_100)
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{source}", str(shallow)], check=True
    )
    with pytest.raises(SandboxError, match="shallow git clone"):
        read_provenance("1.0.0", shallow / "docker", environ={})
