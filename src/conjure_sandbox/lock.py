"""The lock files of the images.

Python: docker/requirements.in -> requirements.lock, pinned with hashes for
every wheel of each release, resolved for the images' CPython on every
platform, so that one lock serves amd64 and arm64 builds. JavaScript:
docker/npm/package.json -> package-lock.json, with npm's integrity hashes.
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


# The folder of the images' JavaScript libraries, inside docker/.
NPM_DIR = "npm"


def npm_lock_argv(docker_dir: Path) -> list[str]:
    """The npm command that (re)writes docker/npm/package-lock.json without installing."""
    return [
        *("npm", "install", "--prefix", str(docker_dir / NPM_DIR), "--package-lock-only"),
        *("--ignore-scripts", "--no-audit", "--no-fund"),
    ]
