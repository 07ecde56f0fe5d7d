"""What an image is built from, as one digest: the label that says an image is up to date.

Pure. The digest covers the build context's files (other variants' Dockerfiles
aside), the build's recipe (Dockerfile, arguments, labels, SBOM generator,
epoch, compression; see ``BuildTarget.recipe``) and the base image's ID.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

INPUTS_LABEL = "io.github.holsee.conjure-sandbox.inputs"


def context_files(context: Path) -> dict[str, str]:
    """Every file in the build context, by relative path, with the sha256 of its content."""
    return {
        str(path.relative_to(context)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(context.rglob("*"))
        if path.is_file()
    }


def inputs_digest(files: Mapping[str, str], recipe: Iterable[str], base_id: str) -> str:
    """The digest labelling an image built from these context files, recipe and base."""
    material = json.dumps(
        {"files": dict(sorted(files.items())), "recipe": list(recipe), "base": base_id}
    )
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()
