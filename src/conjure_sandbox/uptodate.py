"""Knowing when nothing changed, so a no-op build answers "up to date" without BuildKit.

Every image carries a label with the digest of what it was built from: the
build context's files (other variants' Dockerfiles aside), the build's recipe
(Dockerfile, arguments, labels, SBOM generator, epoch; see
``BuildTarget.recipe``) and the base image's ID. A loaded single-platform image
of the right platform that still carries the digest the plan would give it,
under every tag the plan names, has nothing to rebuild.

The one engine query here is a plain ``docker image inspect``: importing
python-on-whales costs more (about 0.3 s) than the whole check.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from conjure_sandbox.cache import exported

if TYPE_CHECKING:
    from conjure_sandbox.plan import BuildTarget

INPUTS_LABEL = "io.github.holsee.conjure-sandbox.inputs"


@dataclass(frozen=True)
class LocalImage:
    """What the engine holds under one reference."""

    id: str
    labels: Mapping[str, str]
    platform: str = ""
    # The config's creation time, in seconds since 1970 (0 when the engine gave none).
    created: int = 0


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


def is_current(target: BuildTarget, known: Mapping[str, LocalImage]) -> bool:
    """True when a loaded image already carries this target's inputs digest and its cache exists."""
    if target.push or not target.load or not target.cache or not target.inputs:
        return False
    # The label says nothing of platforms: an image loaded for one cannot stand for two.
    if len(target.platforms) != 1:
        return False
    for tag in target.tags:
        image = known.get(tag)
        if image is None or image.labels.get(INPUTS_LABEL) != target.inputs:
            return False
        if image.platform and image.platform != target.platforms[0]:
            return False
    return all(exported(spec) for spec in target.cache_to)


def local_images(refs: Iterable[str], docker: str = "docker") -> dict[str, LocalImage] | None:
    """The references the engine holds, by name; None when no engine answers."""
    wanted = list(dict.fromkeys(refs))
    try:
        # Exits 1 when any reference is missing but still prints the others.
        out = subprocess.run(
            [docker, "image", "inspect", "--format", "{{json .}}", *wanted],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 and not out.stdout.strip() and "No such image" not in out.stderr:
        return None
    found: dict[str, LocalImage] = {}
    for line in out.stdout.splitlines():
        try:
            info = json.loads(line)
        except json.JSONDecodeError:
            continue
        labels = (info.get("Config") or {}).get("Labels") or {}
        names = {*(info.get("RepoTags") or ()), *(info.get("RepoDigests") or ())}
        for ref in wanted:
            if _with_tag(ref) in names or ref in names or _by_digest(ref) in names:
                platform = f"{info.get('Os', '')}/{info.get('Architecture', '')}"
                found.setdefault(
                    ref,
                    LocalImage(
                        id=info.get("Id", ""),
                        labels=labels,
                        platform=platform,
                        created=_seconds(info.get("Created") or ""),
                    ),
                )
    return found


def _seconds(created: str) -> int:
    """An engine's RFC 3339 time (nanoseconds and all) in whole seconds; 0 if unreadable."""
    try:
        return int(datetime.fromisoformat(created[:19] + "+00:00").timestamp())
    except ValueError:
        return 0


def _by_digest(ref: str) -> str:
    """``name:tag@sha256:…`` as the engine lists it among RepoDigests: ``name@sha256:…``."""
    name, at, digest = ref.partition("@")
    if not at:
        return ""
    head, _, last = name.rpartition("/")
    repository = f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]
    return f"{repository}@{digest}"


def _with_tag(ref: str) -> str:
    """``name`` as the engine lists it: ``name:latest``."""
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in ref else f"{ref}:latest"
