"""The Python lock file of the images: docker/requirements.in -> requirements.lock.

Pinned with hashes for every wheel of each release, resolved for the images'
CPython on every platform, so that one lock serves amd64 and arm64 builds.
"""

from __future__ import annotations

from pathlib import Path

# Debian 13's python3, which the images' virtual environment is made from.
IMAGE_PYTHON = "3.13"


def lock_argv(docker_dir: Path, *, upgrade: bool = False) -> list[str]:
    """The uv command that (re)writes the lock file."""
    argv = [
        *("uv", "pip", "compile", str(docker_dir / "requirements.in")),
        *("--generate-hashes", "--universal", "--python-version", IMAGE_PYTHON),
        *("--output-file", str(docker_dir / "requirements.lock")),
        *("--no-header", "--quiet", "--no-python-downloads"),
    ]
    return [*argv, "--upgrade"] if upgrade else argv
