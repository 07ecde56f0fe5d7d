"""Where an image comes from: version, the commit that last changed its inputs, and when.

An image's inputs are its own Dockerfile and every shared file of the build
context (the lock, the scripts, the catalogue), never another variant's
Dockerfile: so a commit that touches only Dockerfile.node leaves the other
variants' revision, creation time and SOURCE_DATE_EPOCH, and so their images,
exactly as they were. The base image enters by digest (a label), not by commit.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conjure_sandbox.catalogue import Catalogue, Variant
from conjure_sandbox.dockerfiles import LAYERS_DIR
from conjure_sandbox.errors import SandboxError

DIRTY = "-dirty"


@dataclass(frozen=True)
class Provenance:
    """Version, git revision and SOURCE_DATE_EPOCH of one image."""

    version: str
    revision: str
    epoch: int

    @property
    def created(self) -> str:
        """The epoch as RFC 3339, for the ``created`` label."""
        return datetime.fromtimestamp(self.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def input_paths(catalogue: Catalogue, variant: Variant) -> tuple[str, ...]:
    """Git pathspecs, relative to the build context, of what ``variant`` is built from.

    The shared layer files are left out: their text is in the Dockerfiles.
    """
    others = sorted(v.dockerfile.name for v in catalogue if v.name != variant.name)
    return (".", *(f":(exclude){name}" for name in others), f":(exclude){LAYERS_DIR}")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def read_provenance(
    version: str,
    context: Path,
    paths: tuple[str, ...] = (".",),
    environ: Mapping[str, str] | None = None,
) -> Provenance:
    """The last commit that changed ``paths`` (under ``context``), and its commit time.

    SOURCE_DATE_EPOCH in the environment overrides the time. Uncommitted
    changes to ``paths`` mark the revision ``-dirty``. Outside git, the newest
    file of ``context`` gives the time. Never the wall clock: two builds of the
    same sources carry the same labels and time stamps.
    """
    env = os.environ if environ is None else environ
    if _git(["rev-parse", "--is-shallow-repository"], context) == "true":
        raise SandboxError(
            f"{context} is in a shallow git clone: which commit last changed each variant's "
            "inputs is unknown",
            "fetch the whole history (git fetch --unshallow; actions/checkout: fetch-depth: 0)",
        )
    last = _git(["log", "-1", "--format=%H %ct", "--", *paths], context)
    revision, commit_time = last.split() if last else ("unknown", "")
    if last and _git(["status", "--porcelain", "--", *paths], context):
        revision += DIRTY
    epoch = env.get("SOURCE_DATE_EPOCH") or commit_time
    if not epoch:
        newest = max((p.stat().st_mtime for p in context.rglob("*") if p.is_file()), default=0)
        epoch = str(int(newest))
    return Provenance(version=version, revision=revision, epoch=int(epoch))
