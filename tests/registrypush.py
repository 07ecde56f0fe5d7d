"""``docker push`` for test set-up, through Debian's registry's occasional 500.

docker push (containerd image store) writes each platform's manifest under
the tag while it reads the tag, and Debian's registry 2.8 writes a tag's link
file in place: a read that meets the write gets "500 Internal Server Error"
("invalid checksum digest format"). Publish retries such answers itself; a
test's own set-up push does the same here, so that it does not fail on the
race it is not testing.
"""

from __future__ import annotations

import subprocess

from conjure_sandbox.retry import REGISTRY


def docker_push(ref: str) -> None:
    """Push ``ref``; again on a registry 5xx, as publish does; fail with docker's message
    otherwise."""
    for attempt in range(REGISTRY.tries):
        pushed = subprocess.run(
            ["docker", "push", "--quiet", ref], capture_output=True, text=True, check=False
        )
        if pushed.returncode == 0:
            return
        server_error = "500 Internal Server Error" in pushed.stderr
        if not (server_error and REGISTRY.again(f"docker push {ref}", ": HTTP 500", attempt)):
            raise AssertionError(f"docker push {ref} failed: {pushed.stderr.strip()}")
