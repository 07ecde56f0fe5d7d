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
import time


def docker_push(ref: str, attempts: int = 3) -> None:
    """Push ``ref``; again on a registry 5xx; fail with docker's message otherwise."""
    for attempt in range(attempts):
        pushed = subprocess.run(
            ["docker", "push", "--quiet", ref], capture_output=True, text=True, check=False
        )
        if pushed.returncode == 0:
            return
        if "500 Internal Server Error" not in pushed.stderr or attempt == attempts - 1:
            raise AssertionError(f"docker push {ref} failed: {pushed.stderr.strip()}")
        time.sleep(0.5)
