"""Small OCI layouts written by hand: real registry content without building an image."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path


def write_layout(
    path: Path, platforms: tuple[str, ...] = (), seed: str = ""
) -> tuple[str, dict[str, str]]:
    """An OCI layout tarball at ``path``: its root digest and each platform's manifest digest.

    No ``platforms``: the root is one image manifest. Otherwise the root is an
    index with one image per platform. ``seed`` makes different content.
    """
    blobs: dict[str, bytes] = {}

    def add(document: object, media_type: str) -> dict[str, object]:
        data = document if isinstance(document, bytes) else json.dumps(document).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(platform: str) -> dict[str, object]:
        os_name, architecture = platform.split("/")[:2]
        layer = add(
            f"{seed} {platform} layer ".encode() * 2048,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
        config = add(
            {"architecture": architecture, "os": os_name, "rootfs": {"type": "layers"}},
            "application/vnd.oci.image.config.v1+json",
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
        }
        return add(manifest, "application/vnd.oci.image.manifest.v1+json")

    children: dict[str, str] = {}
    if platforms:
        entries = []
        for platform in platforms:
            descriptor = image(platform)
            children[platform] = str(descriptor["digest"])
            os_name, architecture = platform.split("/")[:2]
            entries.append(
                {**descriptor, "platform": {"os": os_name, "architecture": architecture}}
            )
        root = add(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": entries,
            },
            "application/vnd.oci.image.index.v1+json",
        )
    else:
        root = image("linux/amd64")
    with tarfile.open(path, "w") as tar:
        index = json.dumps({"schemaVersion": 2, "manifests": [root]}).encode()
        for name, data in [
            ("index.json", index),
            *((f"blobs/{d.replace(':', '/')}", b) for d, b in blobs.items()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(root["digest"]), children
