"""Records of which exact images passed their image tests, per variant and platform.

The image tests write one when every selected test passed against an image
that was built beforehand (``pytest tests/images --image ...``), together
with what that run covered. Publishing pushes only images with a record of a
complete run (the whole image suite, nothing filtered out, nothing skipped)
for each of their platforms, so what is published is what was tested, never
a rebuild and never a part of the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from conjure_sandbox.catalogue import platforms_slug
from conjure_sandbox.errors import SandboxError


@dataclass(frozen=True)
class Coverage:
    """What one passing run of the image tests left out; all empty or zero for a complete run."""

    markers: str = ""  # -m expression
    keywords: str = ""  # -k expression
    paths: tuple[str, ...] = ()  # test paths narrower than the whole suite
    deselected: int = 0  # tests deselected other than by the catalogue's ``needs``
    skipped: int = 0  # skipped or xfailed
    reruns: str = ""  # --lf / --sw, which run a remembered subset
    passed: int = 0

    def shortfall(self) -> str:
        """Why this run does not count as the complete suite, or "" when it does."""
        found = [
            f"-m {self.markers!r}" if self.markers else "",
            f"-k {self.keywords!r}" if self.keywords else "",
            f"paths {', '.join(self.paths)}" if self.paths else "",
            f"{self.deselected} deselected" if self.deselected else "",
            f"{self.skipped} skipped" if self.skipped else "",
            self.reruns,
            "" if self.passed else "no test passed",
        ]
        return ", ".join(f for f in found if f)


@dataclass(frozen=True)
class TestedImage:
    """One variant's image, identified by its ID (index digest), tested on one platform."""

    __test__ = False  # not a pytest test class

    variant: str
    platform: str
    ref: str
    id: str
    version: str
    coverage: Coverage = Coverage()  # nothing known: not a complete run


def record(directory: Path, image: TestedImage) -> Path:
    """Write (or replace) the record for this image ID, variant and platform.

    A partial run has a file of its own, so it never replaces a complete one.
    """
    slug = f"{image.variant}.{platforms_slug((image.platform,))}.{image.id.split(':')[-1][:16]}"
    path = directory / f"{slug}{'.partial' if image.coverage.shortfall() else ''}.json"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(image), indent=2) + "\n")
    return path


def load(directory: Path) -> list[TestedImage]:
    """Every record in ``directory``; one that cannot be read is a one-line error naming it."""
    if not directory.is_dir():
        return []
    return [_read(p) for p in sorted(directory.glob("*.json"))]


def _read(path: Path) -> TestedImage:
    try:
        data = json.loads(path.read_text())
        coverage = data.pop("coverage")
        coverage["paths"] = tuple(coverage.get("paths", ()))
        image = TestedImage(**data, coverage=Coverage(**coverage))
        strings = [getattr(image, f.name) for f in fields(image) if f.name != "coverage"]
        if not all(isinstance(s, str) for s in strings):
            raise TypeError("a field is not a string")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise SandboxError(
            f"test record {path} is unreadable ({type(error).__name__}: {error})",
            "delete it and run the image tests again (they write a new one)",
        ) from None
    return image


def complete_runs(
    records: Iterable[TestedImage],
    platforms: Iterable[str],
    wanted: Callable[[TestedImage], bool],
) -> tuple[dict[str, list[TestedImage]], dict[str, str]]:
    """Per platform, the ``wanted`` records of complete runs; and each platform without one.

    The second maps such a platform to what was found instead: "" for no
    record, else why the recorded runs fall short (``-m 'contract'``, ...).
    """
    platforms = tuple(platforms)
    found: dict[str, list[TestedImage]] = {p: [] for p in platforms}
    short: dict[str, list[str]] = {p: [] for p in platforms}
    for r in records:
        if r.platform in found and wanted(r):
            why = r.coverage.shortfall()
            if why:
                short[r.platform].append(why)
            else:
                found[r.platform].append(r)
    return found, {p: "; ".join(short[p]) for p in platforms if not found[p]}


def untested_platforms(
    records: Iterable[TestedImage], variant: str, image_id: str, platforms: Iterable[str]
) -> dict[str, str]:
    """Each platform without a complete passing run on this exact image, and what was found."""
    return complete_runs(records, platforms, lambda r: r.variant == variant and r.id == image_id)[1]
