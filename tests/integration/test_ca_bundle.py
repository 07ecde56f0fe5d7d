"""The extra CA bundle reaches pip, curl and Node.js in a build and is in no layer.

The bundle is the host's system bundle plus a certificate generated for this
test: its base64 body can only reach the image through a leak.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conjure_sandbox.build import host_platform
from conjure_sandbox.cabundle import resolve_ca_bundle, secret_spec
from conjure_sandbox.catalogue import Expectations, Variant
from conjure_sandbox.compression import layer_tar
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.plan import BuildTarget
from conjure_sandbox.request import Load
from conjure_sandbox.runner import run_target
from tests.integration.conftest import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PROBE = ROOT / "tests/integration/data/Dockerfile.ca-probe"
TAG = "conjure-sandbox-test/ca-probe:latest"


def _generated_certificate(where: Path) -> str:
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=conjure-sandbox leak probe", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert.read_text()


def _blobs(saved: Path) -> Iterator[bytes]:
    """Every blob of a saved image and, where it is a compressed layer, each entry's
    name, link, headers and content."""
    with tarfile.open(saved) as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            handle = archive.extractfile(member)
            assert handle is not None
            data = handle.read()
            yield data
            if data[:2] == b"\x1f\x8b" or data[:4] == b"\x28\xb5\x2f\xfd":  # gzip, zstd
                with layer_tar(data) as layer:
                    for entry in layer:
                        yield f"{entry.name} {entry.linkname} {entry.pax_headers}".encode()
                        content = layer.extractfile(entry) if entry.isfile() else None
                        if content is not None:
                            yield content.read()


def test_bundle_is_used_in_the_build_and_absent_from_every_layer(tmp_path: Path) -> None:
    from python_on_whales import docker

    settings = Settings.from_env()
    host_bundle = resolve_ca_bundle("auto")
    assert host_bundle is not None, "this host has no system CA bundle to extend"
    extra = _generated_certificate(tmp_path)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(host_bundle.read_text() + extra)
    body_lines = [line for line in extra.splitlines() if line and not line.startswith("-----")]
    leak_markers = [line.encode() for line in body_lines[1:4]]
    present = f"present-{uuid.uuid4().hex}"

    probe = Variant(
        name="ca-probe",
        dockerfile=PROBE,
        tag_suffix="-ca-probe",
        platforms=("linux/amd64",),
        description="CA bundle probe",
        expect=Expectations(),
    )
    target = BuildTarget(
        variant=probe,
        context=docker_dir(),
        platforms=(host_platform(),),
        tags=(TAG,),
        build_args=(("BASE", settings.local_base), ("PRESENT_MARKER", present)),
        labels=(),
        secrets=(secret_spec(bundle),),
        delivery=Load(),
    )
    lines: list[str] = []
    result = run_target(docker, target, None, lines.append)
    assert result.ok, result.error

    saved = tmp_path / "image.tar"
    docker.image.save(TAG, output=saved)
    blobs = list(_blobs(saved))
    # The scan itself works: a token the build wrote on purpose is found.
    assert any(present.encode() in blob for blob in blobs)
    for marker in leak_markers:
        assert not any(marker in blob for blob in blobs), "CA bundle content found in the image"

    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{json .}}", TAG],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config = json.dumps(docker.image.inspect(TAG).config.model_dump(mode="json"))
    for text in (history, config):
        assert str(bundle) not in text
        for marker in leak_markers:
            assert marker.decode() not in text
