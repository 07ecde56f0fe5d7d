"""The engine, as the pure modules see it: what it holds under a reference, and why a
docker command failed.

The one engine query here is a plain ``docker image inspect``: importing
python-on-whales costs more (about 0.3 s) than the whole check.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LocalImage:
    """What the engine holds under one reference."""

    id: str
    labels: Mapping[str, str]
    platform: str = ""
    # The config's creation time, in seconds since 1970 (0 when the engine gave none).
    created: int = 0
    # ``repo@sha256:…`` of each manifest or index the engine pulled (or pushed) these bytes
    # as. ``id`` is the index digest in the containerd store but the config's digest in the
    # classic store and Podman; a pinned reference is recognised here, on every engine.
    repo_digests: frozenset[str] = frozenset()

    def holds(self, pinned: str) -> bool:
        """Whether the engine recorded these bytes as ``pinned`` (``repo@sha256:…``)."""
        return _by_digest(pinned) in self.repo_digests


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
                        repo_digests=frozenset(
                            d for d in info.get("RepoDigests") or () if isinstance(d, str)
                        ),
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


def reason(error: BaseException | str, default: str = "no reason given") -> str:
    """The last line a docker command wrote to stderr (else the error's text): its own reason."""
    text = error if isinstance(error, str) else str(getattr(error, "stderr", "") or error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else default


def remote_exists(ref: str) -> bool:
    """Whether a registry serves ``ref`` (a plain CLI call: no python-on-whales import needed)."""
    try:
        out = subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", "--raw", ref],
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def own_manifests(ref: str, image_id: str) -> frozenset[str]:
    """The per-platform manifests (and attestations) in a local image's index, by digest.

    The engine shows only the index digest; ``docker save`` streams the OCI
    layout, whose blobs come in digest order, and stops once the index is read.
    """
    wanted = f"blobs/sha256/{image_id.split(':')[-1]}"
    save = subprocess.Popen(
        ["docker", "save", ref], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        with tarfile.open(fileobj=save.stdout, mode="r|") as tar:
            for member in tar:
                if member.name == wanted:
                    handle = tar.extractfile(member)
                    index = json.loads(handle.read()) if handle else {}
                    return frozenset(str(m["digest"]) for m in index.get("manifests", ()))
    except (tarfile.TarError, json.JSONDecodeError, OSError):
        pass
    finally:
        save.kill()
        save.wait()
    return frozenset()
