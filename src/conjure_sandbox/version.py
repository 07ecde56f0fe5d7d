"""The package version: the single source of truth for image tags and labels."""

from __future__ import annotations

import tomllib
from importlib import metadata

from conjure_sandbox.config import SOURCE_ROOT

DISTRIBUTION = "conjure-sandbox"
_SOURCE_PYPROJECT = SOURCE_ROOT / "pyproject.toml"


def package_version() -> str:
    """The version in pyproject.toml when running from a source tree, else the installed one.

    The source tree wins so that a version bump is seen before reinstalling.
    """
    if _SOURCE_PYPROJECT.is_file():
        project = tomllib.loads(_SOURCE_PYPROJECT.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DISTRIBUTION:
            return str(project["version"])
    return metadata.version(DISTRIBUTION)


def same_version(semver_text: str, installed: str) -> bool:
    """Whether a semver version (``1.0.0-rc.1``, as tags and pins write it) is the version an
    installed distribution reports, which PEP 440 normalizes (``1.0.0rc1``)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(semver_text) == Version(installed)
    except InvalidVersion:
        return semver_text == installed
