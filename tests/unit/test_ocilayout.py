"""The one OCI-layout reader: a root, blobs by digest, and one line for what is missing."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.ocilayout import OciLayout
from tests.ocilayout import write_layout


def test_a_layout_gives_its_root_and_every_blob_by_digest(tmp_path: Path) -> None:
    root, children = write_layout(tmp_path / "l.tar", ("linux/amd64", "linux/arm64"), seed="a")
    with OciLayout(tmp_path / "l.tar") as oci:
        assert oci.root()["digest"] == root
        index = json.loads(oci.blob(root))
        assert [m["digest"] for m in index["manifests"]] == list(children.values())
        manifest = json.loads(oci.blob(children["linux/arm64"]))
        layer = manifest["layers"][0]["digest"]
        content, size = oci.stream(layer)
        data = content.read()
        assert size == len(data)
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer


def test_what_a_layout_lacks_is_one_line_with_the_fix(tmp_path: Path) -> None:
    write_layout(tmp_path / "l.tar")
    with (
        OciLayout(tmp_path / "l.tar", "verify again") as oci,
        pytest.raises(SandboxError) as caught,
    ):
        oci.blob("sha256:" + "0" * 64)
    assert str(caught.value) == (
        f"{tmp_path / 'l.tar'}: blob sha256:{'0' * 64} is missing (fix: verify again)"
    )
    (tmp_path / "junk.tar").write_bytes(b"not a tarball")
    with pytest.raises(SandboxError) as caught:
        OciLayout(tmp_path / "junk.tar")
    assert str(caught.value) == (
        f"{tmp_path / 'junk.tar'} is not an OCI layout (not a tar archive) "
        "(fix: build the image again)"
    )


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ({"manifests": []}, "names 0 manifests, not one root"),
        ({"manifests": [{"digest": "a"}, {"digest": "b"}]}, "names 2 manifests, not one root"),
        ({"manifests": "xy"}, "names no list of manifests"),
        ([1], "names no list of manifests"),
        ({"manifests": [{}]}, "root has no digest"),
    ],
)
def test_a_layout_without_exactly_one_root_is_one_line(
    index: object, expected: str, tmp_path: Path
) -> None:
    layout = tmp_path / "l.tar"
    with tarfile.open(layout, "w") as archive:
        data = json.dumps(index).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with OciLayout(layout) as oci, pytest.raises(SandboxError) as caught:
        oci.root()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
