"""What a build is asked for, in types that cannot hold a contradiction.

Pure. ``invoke build``'s flags become one ``BuildRequest`` here; where flags
contradict each other (``--load --push``), ``output_for`` refuses in one line,
so the planner never sees such a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conjure_sandbox.errors import SandboxError


@dataclass(frozen=True)
class Load:
    """Into the engine's image store, under the plan's tags."""


@dataclass(frozen=True)
class Push:
    """To the registry each tag names (through an OCI layout, then uploaded)."""


@dataclass(frozen=True)
class PushByDigest:
    """Untagged, by digest, into the image's repository (CI's per-platform jobs); the plan
    names the repository."""

    repository: str = ""


@dataclass(frozen=True)
class Export:
    """Loaded and pushed nowhere: each image stays an OCI layout ``<variant>.tar`` here."""

    directory: Path


@dataclass(frozen=True)
class CacheOnly:
    """Built into the build cache only (several platforms, nothing asked for)."""


Output = Load | Push | PushByDigest | Export | CacheOnly


def output_for(
    *, load: bool = False, push: bool = False, by_digest: bool = False, export: Path | None = None
) -> Output | None:
    """The output the flags ask for; None when they ask for none (see ``BuildRequest``)."""
    if export is not None and (load or push or by_digest):
        raise SandboxError("an export is neither loaded nor pushed", "drop --load and --push")
    if load and (push or by_digest):
        raise SandboxError("--load and --push exclude each other", "pick one")
    if export is not None:
        return Export(export)
    if by_digest:
        return PushByDigest()
    if push:
        return Push()
    return Load() if load else None


@dataclass(frozen=True)
class BuildRequest:
    """One ``invoke build``: which variants, for which platforms, delivered how.

    ``output`` None: each variant is loaded when it is built for one platform, and
    kept in the build cache only otherwise; ``platforms`` empty: the host's when the
    output is None or a load, else each variant's catalogue platforms.
    """

    variants: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    output: Output | None = None
    # A tag prefix instead of <image>:<version> (the variant's suffix is added).
    tag: str | None = None
    version: str | None = None
    base: str | None = None
    # False: ignore every cached step (a fresh cache is still exported).
    cache: bool = True
    # A directory, a registry repository or "none"; None: the settings' cache.
    cache_store: str | None = None
    builder: str | None = None
    # Variants built at once; 0: all.
    jobs: int = 0
    progress: str = "plain"
    sbom: bool = True
    # The folder holding the Dockerfiles and the catalogue, if not this checkout's.
    context: Path | None = None

    @property
    def publishing(self) -> bool:
        return isinstance(self.output, Push | PushByDigest)

    def check(self) -> None:
        """Refuse what no type rules out, each in one line with its fix."""
        if isinstance(self.output, PushByDigest) and self.tag:
            raise SandboxError("a push by digest carries no tag", "drop --tag")
        if self.jobs < 0:
            raise SandboxError(f"--jobs {self.jobs}: a count cannot be negative", JOBS_FIX)
        if self.progress not in PROGRESS:
            raise SandboxError(
                f"unknown --progress {self.progress!r}", f"use one of {', '.join(PROGRESS)}"
            )


PROGRESS = ("plain", "quiet")
JOBS_FIX = "pass --jobs N with N >= 1 variants at once, or 0 for all at once"
