"""The lock files of the images.

Python: docker/requirements.in -> requirements.lock, pinned with hashes for
every wheel of each release, resolved for the images' CPython on every
platform, so that one lock serves amd64 and arm64 builds; the full variant's
browser packages, requirements-browser.in -> requirements-browser.lock,
compiled against the first and listing only what it lacks. JavaScript:
docker/npm/package.json -> package-lock.json, with npm's integrity hashes.
"""

from __future__ import annotations

import re
from pathlib import Path

# Debian 13's python3, which the images' virtual environment is made from.
IMAGE_PYTHON = "3.13"

# Lock files inside docker/: the venv of full and python, and full's browser layer.
PYTHON_LOCK = "requirements.lock"
BROWSER_LOCK = "requirements-browser.lock"

# Needed by a locked package but taken from Debian: pycairo has no wheel for Linux,
# and the images link Debian's python3-cairo into the venv instead.
FROM_DEBIAN = ("pycairo",)

_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)


def locked_names(lock_text: str) -> tuple[str, ...]:
    """The distribution names a uv lock file pins, in file order."""
    return tuple(_PINNED.findall(lock_text))


def _compile_argv(source: Path, output: Path, omit: tuple[str, ...], upgrade: bool) -> list[str]:
    argv = [
        *("uv", "pip", "compile", str(source)),
        *("--generate-hashes", "--universal", "--python-version", IMAGE_PYTHON),
        *("--output-file", str(output)),
        *("--no-header", "--quiet", "--no-python-downloads"),
        *(arg for name in omit for arg in ("--no-emit-package", name)),
    ]
    return [*argv, "--upgrade"] if upgrade else argv


def lock_argv(docker_dir: Path, *, upgrade: bool = False) -> list[str]:
    """The uv command that (re)writes the venv's lock file."""
    return _compile_argv(
        docker_dir / "requirements.in", docker_dir / PYTHON_LOCK, FROM_DEBIAN, upgrade
    )


def browser_lock_argv(docker_dir: Path, python_lock: str, *, upgrade: bool = False) -> list[str]:
    """The uv command that writes the browser lock: held to the venv's pins, without them."""
    argv = _compile_argv(
        docker_dir / "requirements-browser.in",
        docker_dir / BROWSER_LOCK,
        (*FROM_DEBIAN, *locked_names(python_lock)),
        upgrade,
    )
    return [*argv, "--constraint", str(docker_dir / PYTHON_LOCK)]


# The folder of the images' JavaScript libraries, inside docker/.
NPM_DIR = "npm"


def npm_lock_argv(docker_dir: Path) -> list[str]:
    """The npm command that (re)writes docker/npm/package-lock.json without installing."""
    return [
        *("npm", "install", "--prefix", str(docker_dir / NPM_DIR), "--package-lock-only"),
        *("--ignore-scripts", "--no-audit", "--no-fund"),
    ]
