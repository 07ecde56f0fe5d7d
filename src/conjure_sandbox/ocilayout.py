"""An OCI image layout tarball, the one reader that build, verify and the upload share.

buildx writes every pushed or exported image as such a tarball (``type=oci``):
``index.json`` names one root (an index or a manifest), and each blob, manifests
included, lies under ``blobs/sha256/``.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from conjure_sandbox.errors import SandboxError


class OciLayout:
    """A layout tarball open for reading; a missing part is one line with ``fix``."""

    def __init__(self, path: Path, fix: str = "build the image again") -> None:
        self.path, self.fix = path, fix
        try:
            self._archive = tarfile.open(path)  # noqa: SIM115 (closed by close())
        except OSError as error:
            raise SandboxError(f"cannot read {path} ({error.strerror})", fix) from None
        except tarfile.TarError:
            raise SandboxError(f"{path} is not an OCI layout (not a tar archive)", fix) from None

    def __enter__(self) -> OciLayout:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._archive.close()

    def root(self) -> dict[str, Any]:
        """The descriptor ``index.json`` names: the image or index the layout holds."""
        index = self._member("index.json")
        if index is None:
            raise SandboxError(f"{self.path} is not an OCI layout", self.fix)
        try:
            manifests = json.load(index).get("manifests")
        except (ValueError, AttributeError):
            manifests = None
        if not isinstance(manifests, list) or len(manifests) != 1:
            count = len(manifests) if isinstance(manifests, list) else "no list of"
            raise SandboxError(
                f"{self.path}: index.json names {count} manifests, not one root", self.fix
            )
        (root,) = manifests
        if not isinstance(root, dict) or not isinstance(root.get("digest"), str):
            raise SandboxError(f"{self.path}: index.json's root has no digest", self.fix)
        return dict(root)

    def stream(self, digest: str) -> tuple[IO[bytes], int]:
        """A blob's content as a file, and its size."""
        name = f"blobs/{digest.replace(':', '/')}"
        handle = self._member(name)
        if handle is None:
            raise SandboxError(f"{self.path}: blob {digest} is missing", self.fix)
        return handle, self._archive.getmember(name).size

    def blob(self, digest: str) -> bytes:
        """A blob's bytes (a manifest's too), by digest."""
        return self.stream(digest)[0].read()

    def _member(self, name: str) -> IO[bytes] | None:
        try:
            return self._archive.extractfile(name)
        except KeyError:
            return None
