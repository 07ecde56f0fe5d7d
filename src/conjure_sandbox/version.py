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
