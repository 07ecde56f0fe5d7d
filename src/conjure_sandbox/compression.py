"""Layer compression: zstd by default, gzip for engines too old to unpack zstd.

Pure but for ``layer_tar``'s decompression: turns the ``--compression`` setting
into the exporter options every output and cache export carries, and decides
from an engine's version whether it can unpack what it would be given.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass
from typing import Literal

from conjure_sandbox.config import DEFAULT_COMPRESSION, ZSTD_LEVEL
from conjure_sandbox.errors import SandboxError

# Docker Engine 23.0 was the first to pull and load zstd layers (moby/moby#41759).
MIN_ZSTD_ENGINE = (23, 0)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_RELEASE = re.compile(r"^v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class Compression:
    """How every layer of an image (and of its build cache) is compressed."""

    name: Literal["zstd", "gzip"]
    # zstd's level; gzip keeps BuildKit's default, so its digests are today's.
    level: int | None = None

    def __str__(self) -> str:
        return f"{self.name} level {self.level}" if self.level is not None else self.name

    @property
    def layer_media_type(self) -> str:
        """The OCI media type each layer so compressed carries."""
        return f"application/vnd.oci.image.layer.v1.tar+{self.name}"

    @property
    def exporter_options(self) -> str:
        """The ``compression`` fields of an ``--output`` or ``--cache-to`` spec.

        Forced: a layer BuildKit already holds in the other compression (the
        base's gzip layers, a cache from before) is compressed again, so every
        layer of the image has the one media type.
        """
        level = f",compression-level={self.level}" if self.level is not None else ""
        return f"compression={self.name}{level},force-compression=true"


ZSTD = Compression("zstd", ZSTD_LEVEL)
GZIP = Compression("gzip")
CHOICES: dict[str, Compression] = {c.name: c for c in (ZSTD, GZIP)}
GZIP_FIX = "set CONJURE_COMPRESSION=gzip (or pass --compression gzip)"


def parse_compression(text: str) -> Compression:
    """``zstd`` or ``gzip``, as given by ``--compression`` or CONJURE_COMPRESSION."""
    chosen = CHOICES.get(text.strip().lower())
    if chosen is None:
        raise SandboxError(
            f"compression {text!r} (--compression or CONJURE_COMPRESSION) is not known",
            f"use one of {', '.join(CHOICES)}",
        )
    return chosen


def engine_release(server_version: str) -> tuple[int, int] | None:
    """``26.1.5+dfsg1`` -> (26, 1); None when the engine reports no such number."""
    match = _RELEASE.match(server_version.strip())
    return (int(match[1]), int(match[2])) if match else None


def can_unpack(server_version: str, compression: Compression) -> bool:
    """Whether an engine of this version pulls and loads such layers (an engine whose
    version says nothing, another implementation, is let try)."""
    release = engine_release(server_version)
    return compression.name != "zstd" or release is None or release >= MIN_ZSTD_ENGINE


def check_engine(server_version: str, compression: Compression, doing: str) -> None:
    """Refuse, in one line, to have an engine unpack zstd layers it cannot read."""
    if can_unpack(server_version, compression):
        return
    minimum = ".".join(map(str, MIN_ZSTD_ENGINE))
    raise SandboxError(
        f"Docker Engine {server_version} cannot unpack the zstd layers {doing} "
        f"(zstd needs Docker Engine {minimum} or newer)",
        f"upgrade Docker to {minimum} or newer, or {GZIP_FIX} and build locally",
    )


def layer_tar(blob: bytes) -> tarfile.TarFile:
    """A layer blob (zstd, gzip or plain tar) opened for reading its entries in order."""
    if blob.startswith(_ZSTD_MAGIC):
        import zstandard

        frames = zstandard.ZstdDecompressor()
        stream = frames.stream_reader(io.BytesIO(blob), read_across_frames=True)
        return tarfile.open(fileobj=stream, mode="r|")
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")


DEFAULT = parse_compression(DEFAULT_COMPRESSION)
