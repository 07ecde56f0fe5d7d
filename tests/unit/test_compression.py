"""The compression setting, the engine check and reading layers in either compression."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
import zstandard

from conjure_sandbox.compression import (
    GZIP,
    MIN_ZSTD_ENGINE,
    ZSTD,
    check_engine,
    engine_release,
    layer_tar,
    parse_compression,
)
from conjure_sandbox.config import DEFAULT_COMPRESSION, ZSTD_LEVEL, Settings
from conjure_sandbox.errors import SandboxError


def test_zstd_at_the_configured_level_is_the_default() -> None:
    assert parse_compression(Settings().compression) == ZSTD
    assert parse_compression(DEFAULT_COMPRESSION).level == ZSTD_LEVEL
    assert Settings.from_env({"CONJURE_COMPRESSION": "gzip"}).compression == "gzip"
    assert parse_compression(" GZIP ") == GZIP
    assert str(ZSTD) == f"zstd level {ZSTD_LEVEL}"
    assert str(GZIP) == "gzip"


@pytest.mark.parametrize("text", ["", "xz", "zstd:19", "estargz", "uncompressed"])
def test_an_unknown_compression_is_one_line_naming_the_choices(text: str) -> None:
    with pytest.raises(SandboxError) as caught:
        parse_compression(text)
    assert "\n" not in str(caught.value)
    assert caught.value.fix == "use one of zstd, gzip"


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("26.1.5+dfsg1", (26, 1)),
        ("20.10.24+dfsg1", (20, 10)),
        ("v28.2.2", (28, 2)),
        ("23.0.0-rc.1", (23, 0)),
        ("dev", None),
        ("", None),
    ],
)
def test_engine_release_reads_major_and_minor(version: str, release: tuple[int, int]) -> None:
    assert engine_release(version) == release


def test_an_engine_before_23_is_refused_zstd_in_one_line_naming_the_minimum_and_gzip() -> None:
    with pytest.raises(SandboxError) as caught:
        check_engine("20.10.24+dfsg1", ZSTD, "the published images have")
    message = str(caught.value)
    assert "\n" not in message
    assert "Docker Engine 20.10.24+dfsg1 cannot unpack the zstd layers" in message
    assert "23.0 or newer" in message
    assert "CONJURE_COMPRESSION=gzip" in message
    assert MIN_ZSTD_ENGINE == (23, 0)


@pytest.mark.parametrize(
    ("version", "compression"),
    [("23.0.0", ZSTD), ("26.1.5+dfsg1", ZSTD), ("20.10.24", GZIP), ("podman", ZSTD)],
)
def test_what_an_engine_can_unpack_passes(version: str, compression: object) -> None:
    check_engine(version, compression, "x")  # type: ignore[arg-type]


def _layer() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, body in (("etc/a", b"alpha\n"), ("usr/b", b"beta" * 1000)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return raw.getvalue()


@pytest.mark.parametrize(
    "compress",
    [
        lambda raw: zstandard.ZstdCompressor(level=12).compress(raw),
        # Two frames, as a writer that flushes mid-stream leaves them.
        lambda raw: b"".join(
            zstandard.ZstdCompressor().compress(part) for part in (raw[:1536], raw[1536:])
        ),
        lambda raw: gzip.compress(raw, mtime=0),
        lambda raw: raw,
    ],
    ids=["zstd", "zstd-two-frames", "gzip", "plain"],
)
def test_a_layer_reads_the_same_in_every_compression(compress) -> None:  # type: ignore[no-untyped-def]
    raw = _layer()
    with layer_tar(compress(raw)) as archive:
        read = {}
        for member in archive:
            handle = archive.extractfile(member)
            read[member.name] = handle.read() if handle else b""
    assert read == {"etc/a": b"alpha\n", "usr/b": b"beta" * 1000}
