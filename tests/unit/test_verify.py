from __future__ import annotations

import gzip
import io
import json
import tarfile
import tracemalloc

import pytest

from conjure_sandbox import verify
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.sbom import package_names, package_types
from conjure_sandbox.verify import (
    Image,
    compare,
    differing_files,
    images,
    layer_files,
    report,
    sbom_digest,
)


def _layer(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def test_differing_files_names_changed_added_removed_and_re_moded_entries() -> None:
    ours = _layer({"etc/motd": b"hi", "etc/keep": b"same", "usr/gone": b"x"})
    theirs = _layer({"etc/motd": b"ho", "etc/keep": b"same", "usr/new": b"y"})
    assert differing_files(ours, theirs) == ("/etc/motd", "/usr/gone", "/usr/new")
    assert differing_files(ours, ours) == ()
    assert differing_files(
        ours, _layer({"etc/motd": b"hi", "etc/keep": b"same", "usr/gone": b"x"}, mode=0o755)
    ) == ("/etc/keep", "/etc/motd", "/usr/gone")


def test_compare_reports_each_differing_layer_by_position_with_its_files() -> None:
    blobs = {
        "sha256:base": _layer({"bin/sh": b"sh"}),
        "sha256:ours": _layer({"etc/motd": b"rebuilt"}),
        "sha256:theirs": _layer({"etc/motd": b"tampered"}),
        "sha256:extra": _layer({"root/x": b"x"}),
    }

    def manifest(*layers: str) -> dict[str, object]:
        return {
            "config": {"digest": f"sha256:config-{len(layers)}"},
            "layers": [{"digest": d} for d in layers],
        }

    rebuilt = Image("sha256:a", manifest("sha256:base", "sha256:ours"), "sha256:sbom")
    published = Image(
        "sha256:b", manifest("sha256:base", "sha256:theirs", "sha256:extra"), "sha256:sbom"
    )
    result = compare(
        "minimal", "linux/amd64", rebuilt, published, blobs.__getitem__, blobs.__getitem__
    )
    assert not result.same
    assert [(d.position, d.files) for d in result.layers] == [
        (2, ("/etc/motd",)),
        (3, ("/root/x",)),
    ]
    lines = report([result])
    assert lines[0].startswith("minimal  linux/amd64  DIFFERS")
    assert "    layer 3: rebuilt -, published sha256:extra; 1 file(s) differ" in lines
    assert lines[-1].startswith("Provenance attestations are not compared")

    same = compare("minimal", "linux/amd64", rebuilt, rebuilt, blobs.__getitem__, blobs.__getitem__)
    assert same.same
    assert not same.layers
    other_sbom = Image("sha256:a", rebuilt.manifest, "sha256:other")
    assert not compare(
        "minimal", "linux/amd64", rebuilt, other_sbom, blobs.__getitem__, blobs.__getitem__
    ).same


def test_sbom_packages_are_counted_by_package_url_type() -> None:
    def package(name: str, purl: str) -> dict[str, object]:
        return {
            "name": name,
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl,
                }
            ],
        }

    document = {
        "packages": [
            package("bash", "pkg:deb/debian/bash@5.2?arch=amd64"),
            package("numpy", "pkg:pypi/numpy@2.1"),
            package("pip", "pkg:pypi/pip@25"),
            package("docx", "pkg:npm/docx@9"),
            {"name": "a file-less thing", "externalRefs": []},
        ]
    }
    assert package_types(document) == {"deb": 1, "pypi": 2, "npm": 1}
    assert package_names(document, "pypi") == {"numpy", "pip"}


def test_the_sbom_compared_is_the_document_not_the_statement_naming_the_image() -> None:
    document = {"spdxVersion": "SPDX-2.3", "packages": [{"name": "bash"}]}

    def statement(subject: str, predicate: dict[str, object]) -> bytes:
        return json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "subject": [{"name": subject}],
                "predicateType": "https://spdx.dev/Document",
                "predicate": predicate,
            }
        ).encode()

    tagged = sbom_digest(statement("pkg:docker/example/sandbox@0.1.0?platform=linux", document))
    untagged = sbom_digest(statement("pkg:docker/example/sandbox?platform=linux", document))
    assert tagged == untagged
    other = {**document, "packages": [{"name": "dash"}]}
    assert sbom_digest(statement("pkg:docker/example/sandbox", other)) != tagged


def test_each_platform_gets_the_sbom_attested_for_its_own_image() -> None:
    """An index as BuildKit writes it: two images, then one attestation manifest each,
    listed in the opposite order, so a mix-up of subjects would show."""
    blobs: dict[str, bytes] = {}

    def put(document: object) -> str:
        data = json.dumps(document).encode()
        digest = f"sha256:{len(blobs):064x}"
        blobs[digest] = data
        return digest

    def statement(name: str) -> str:
        return put({"subject": [], "predicate": {"name": name}})

    config = {"digest": "sha256:" + "c" * 64}
    amd64 = put({"layers": [], "config": config})
    arm64 = put({"layers": [{"digest": "sha256:" + "e" * 64}], "config": config})
    attestations = {
        image: put(
            {
                "layers": [
                    {"digest": put({}), "annotations": {"in-toto.io/predicate-type": "other"}},
                    {
                        "digest": statement(name),
                        "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
                    },
                ]
            }
        )
        for image, name in ((arm64, "arm64"), (amd64, "amd64"))
    }
    index = {
        "manifests": [
            {"digest": amd64, "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": arm64, "platform": {"os": "linux", "architecture": "arm64"}},
            *(
                {
                    "digest": attestation,
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": image,
                    },
                }
                for image, attestation in attestations.items()
            ),
        ]
    }
    found = images(index, "sha256:" + "0" * 64, blobs.__getitem__)
    assert sorted(found) == ["linux/amd64", "linux/arm64"]
    for platform, image, name in (("linux/amd64", amd64, "amd64"), ("linux/arm64", arm64, "arm64")):
        assert found[platform].digest == image
        assert found[platform].sbom == sbom_digest(
            json.dumps({"predicate": {"name": name}}).encode()
        )


def _zstd_layer(members: dict[str, int]) -> bytes:
    """A zstd layer whose files are ``size`` zero bytes each, never held whole anywhere."""
    import zstandard

    class Zeros(io.RawIOBase):
        def __init__(self, size: int) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            count = min(len(buffer), self.left)
            buffer[:count] = bytes(count)
            self.left -= count
            return count

    compressed = io.BytesIO()
    writer = zstandard.ZstdCompressor(level=1).stream_writer(compressed, closefd=False)
    with tarfile.open(fileobj=writer, mode="w|") as archive:
        for name, size in members.items():
            info = tarfile.TarInfo(name)
            info.size = size
            archive.addfile(info, io.BufferedReader(Zeros(size)))
    writer.close()
    return compressed.getvalue()


def test_a_decompression_bomb_is_refused_in_one_line_without_holding_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify, "LAYER_MAX_BYTES", 64 * 1024 * 1024)
    bomb = _zstd_layer({"zeros": 256 * 1024 * 1024})
    assert len(bomb) < 64 * 1024  # 256 MiB of zeros in a few KiB
    tracemalloc.start()
    try:
        with pytest.raises(SandboxError) as caught:
            layer_files(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "refused as a decompression bomb" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert peak < 16 * 1024 * 1024, peak


def test_a_layer_with_too_many_entries_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "LAYER_MAX_ENTRIES", 10)
    assert len(layer_files(_zstd_layer({f"f{n}": 1 for n in range(10)}))) == 10
    with pytest.raises(SandboxError, match="more than 10 entries"):
        layer_files(_zstd_layer({f"f{n}": 1 for n in range(11)}))


def test_an_added_top_level_dotfile_is_a_difference() -> None:
    ours = _layer({"./bashrc": b"x"})
    theirs = _layer({"./bashrc": b"x", "./.bashrc": b"x"})
    assert differing_files(ours, theirs) == ("/.bashrc",)
