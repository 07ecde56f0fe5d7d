"""Every variant works under the sandbox executor's locked-down ``docker run``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conjure_sandbox.catalogue import Variant
from conjure_sandbox.version import package_version

pytestmark = pytest.mark.docker

STR_REPLACE = """
import pathlib, sys
path = pathlib.Path(sys.argv[1])
path.write_text(path.read_text().replace(sys.argv[2], sys.argv[3], 1))
"""


@pytest.fixture
def sandbox(image: str, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A container started exactly as the executor starts it: (id, skills dir, work dir)."""
    from python_on_whales import docker

    skills, work = tmp_path / "skills", tmp_path / "work"
    skills.mkdir()
    work.mkdir()
    (skills / "SKILL.md").write_text("# a skill\n")
    os.chown(work, 1000, 1000)
    container = docker.run(
        image,
        ["tail", "-f", "/dev/null"],
        detach=True,
        read_only=True,
        tmpfs=["/tmp"],
        networks=["none"],
        security_options=["no-new-privileges"],
        volumes=[(skills, "/mnt/skills", "ro"), (work, "/workspace")],
    )
    try:
        yield str(container.id), skills, work
    finally:
        container.remove(force=True)


def _exec(container: str, command: str) -> str:
    from python_on_whales import docker

    return str(docker.execute(container, ["bash", "-c", command]))


def test_container_stays_up_under_the_executor_flags(sandbox: tuple[str, Path, Path]) -> None:
    from python_on_whales import docker

    container, _, _ = sandbox
    assert docker.container.inspect(container).state.running
    assert _exec(container, "id -u; id -g; id -un; pwd; echo $HOME").split() == [
        "1000",
        "1000",
        "sandbox",
        "/workspace",
        "/home/sandbox",
    ]


def test_files_written_to_workspace_belong_to_uid_1000(sandbox: tuple[str, Path, Path]) -> None:
    container, _, work = sandbox
    _exec(container, "echo hello > /workspace/out.txt")
    written = work / "out.txt"
    assert written.read_text() == "hello\n"
    assert (written.stat().st_uid, written.stat().st_gid) == (1000, 1000)


def test_viewing_and_editing_files_as_the_executor_does(sandbox: tuple[str, Path, Path]) -> None:
    container, _, work = sandbox
    _exec(container, "printf 'alpha\\nbeta\\n' > /workspace/notes.txt")
    assert _exec(container, "cat /workspace/notes.txt") == "alpha\nbeta"
    assert _exec(container, "sed -n 2p /workspace/notes.txt") == "beta"
    assert _exec(container, "ls /workspace") == "notes.txt"
    assert _exec(container, "test -f /workspace/notes.txt && echo yes") == "yes"
    script = STR_REPLACE.replace("'", "'\\''")
    _exec(container, f"python3 -c '{script}' /workspace/notes.txt beta gamma")
    assert (work / "notes.txt").read_text() == "alpha\ngamma\n"


def test_skills_are_readable_and_cannot_be_written(sandbox: tuple[str, Path, Path]) -> None:
    container, skills, _ = sandbox
    assert _exec(container, "cat /mnt/skills/SKILL.md") == "# a skill"
    assert _exec(container, "touch /mnt/skills/x 2>/dev/null && echo wrote || echo refused") == (
        "refused"
    )
    assert _exec(container, "touch /etc/x 2>/dev/null && echo wrote || echo refused") == "refused"
    assert not (skills / "x").exists()


def test_commands_the_catalogue_promises(image: str, variant: Variant) -> None:
    from python_on_whales import docker

    probe = "; ".join(
        f"command -v {c} >/dev/null && echo {c}=yes || echo {c}=no"
        for c in variant.expect.commands + variant.expect.absent_commands
    )
    found = dict(
        line.split("=")
        for line in str(docker.run(image, ["bash", "-c", probe], remove=True)).split()
    )
    assert {c: found[c] for c in variant.expect.commands} == dict.fromkeys(
        variant.expect.commands, "yes"
    )
    assert {c: found[c] for c in variant.expect.absent_commands} == dict.fromkeys(
        variant.expect.absent_commands, "no"
    )


def test_labels_and_environment(image: str, variant: Variant) -> None:
    from python_on_whales import docker

    config = docker.image.inspect(image).config
    labels = config.labels or {}
    assert labels["org.opencontainers.image.version"] == package_version()
    for key in ("title", "description", "source", "revision", "created", "licenses", "base.name"):
        assert labels[f"org.opencontainers.image.{key}"], key
    assert labels["org.opencontainers.image.description"] == variant.description
    env = dict(item.split("=", 1) for item in config.env or [])
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["NODE_ENV"] == "production"
    assert config.user == "1000:1000"
    assert str(config.working_dir) == "/workspace"
