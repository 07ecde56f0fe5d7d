"""Every variant works under the sandbox executor's locked-down ``docker run``."""

from __future__ import annotations

import subprocess

import pytest

from tests.images.conftest import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.contract]

STR_REPLACE = """
import pathlib, sys
path = pathlib.Path(sys.argv[1])
path.write_text(path.read_text().replace(sys.argv[2], sys.argv[3], 1))
"""


def test_container_stays_up_under_the_executor_flags(sandbox: Sandbox) -> None:
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", sandbox.container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert state == "true"
    assert sandbox.sh("id -u; id -g; id -un; pwd; echo $HOME").split() == [
        *("1000", "1000", "sandbox", "/workspace", "/tmp")
    ]


def test_files_written_to_workspace_belong_to_uid_1000(sandbox: Sandbox) -> None:
    sandbox.sh("echo hello > /workspace/out.txt")
    written = sandbox.work / "out.txt"
    assert written.read_text() == "hello\n"
    assert (written.stat().st_uid, written.stat().st_gid) == (1000, 1000)


def test_viewing_and_editing_files_as_the_executor_does(sandbox: Sandbox) -> None:
    sandbox.sh("printf 'alpha\\nbeta\\n' > /workspace/notes.txt")
    assert sandbox.sh("cat /workspace/notes.txt") == "alpha\nbeta"
    assert sandbox.sh("sed -n 2p /workspace/notes.txt") == "beta"
    assert "notes.txt" in sandbox.sh("ls /workspace").split()
    assert sandbox.sh("test -f /workspace/notes.txt && echo yes") == "yes"
    script = STR_REPLACE.replace("'", "'\\''")
    sandbox.sh(f"python3 -c '{script}' /workspace/notes.txt beta gamma")
    assert (sandbox.work / "notes.txt").read_text() == "alpha\ngamma\n"


def test_skills_are_readable_and_nothing_else_is_writable(sandbox: Sandbox) -> None:
    assert sandbox.sh("cat /mnt/skills/SKILL.md") == "# a skill"
    for path in ("/mnt/skills/x", "/etc/x", "/usr/local/x", "/opt/x"):
        assert sandbox.sh(f"touch {path} 2>/dev/null && echo wrote || echo refused") == "refused"
    assert sandbox.sh("touch /tmp/x && echo wrote") == "wrote"
    assert not (sandbox.skills / "x").exists()


def test_no_network(sandbox: Sandbox) -> None:
    assert sandbox.sh("ls /sys/class/net").split() == ["lo"]


def test_home_and_caches_are_on_the_tmpfs(sandbox: Sandbox) -> None:
    """What tools write on first use (profiles, caches) lands on the executor's tmpfs."""
    out = sandbox.sh(
        'for d in "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$MPLCONFIGDIR" '
        '"$NPM_CONFIG_CACHE"; do mkdir -p "$d" && touch "$d/probe" && '
        'df --output=fstype "$d" | tail -1; done'
    )
    assert out.split() == ["tmpfs"] * 5


def test_unix_sockets_work_without_a_shim(sandbox: Sandbox) -> None:
    """The skills compile an LD_PRELOAD shim with gcc when AF_UNIX is blocked; here it is not."""
    out = sandbox.python(
        """
import os, socket
path = "/tmp/probe.sock"
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect(path)
peer, _ = server.accept()
client.sendall(b"ping")
left, right = socket.socketpair(socket.AF_UNIX)
left.sendall(peer.recv(4))
print(right.recv(4).decode())
"""
    )
    assert out == "ping"
