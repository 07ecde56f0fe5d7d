"""Records of which exact images passed their image tests, per variant and platform.

The image tests write one when every selected test passed against an image
that was built beforehand (``pytest tests/images --image ...``); publishing
pushes only images with a record for each of their platforms, so what is
published is what was tested, never a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from conjure_sandbox.catalogue import platforms_slug


@dataclass(frozen=True)
class TestedImage:
    __test__ = False  # not a pytest test class

    """One variant's image, identified by its ID (index digest), tested on one platform."""

    variant: str
    platform: str
    ref: str
    id: str
    version: str
    selection: str  # the pytest marker expression, "" when every test ran


def record(directory: Path, image: TestedImage) -> Path:
    """Write (or replace) the record for this image ID, variant and platform."""
    slug = f"{image.variant}.{platforms_slug((image.platform,))}.{image.id.split(':')[-1][:16]}"
    path = directory / f"{slug}.json"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(image), indent=2) + "\n")
    return path


def load(directory: Path) -> list[TestedImage]:
    if not directory.is_dir():
        return []
    return [TestedImage(**json.loads(p.read_text())) for p in sorted(directory.glob("*.json"))]


def untested_platforms(
    records: Iterable[TestedImage], variant: str, image_id: str, platforms: Iterable[str]
) -> list[str]:
    """The platforms of ``platforms`` on which this exact image has no passing record."""
    done = {r.platform for r in records if r.variant == variant and r.id == image_id}
    return [p for p in platforms if p not in done]
