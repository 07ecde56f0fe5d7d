"""``invoke verify VERSION``: rebuild a release from its git tag and compare it, platform by
platform, with what the registry publishes under that version.

The rebuild runs in a clean worktree of the tag, without any cache, into OCI
layouts that are loaded and pushed nowhere. Per platform, the image manifest
must have the same digest (and so the same config and layers); where it does
not, each differing layer is opened on both sides and the files whose content,
mode, owner or link differ are named. The SBOM attestation is compared too.
Provenance attestations are not: they record when the build ran, by design.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from conjure_sandbox.build import build_images
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.compression import layer_tar
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.ocilayout import OciLayout
from conjure_sandbox.plan import BASE_DIGEST_LABEL
from conjure_sandbox.registry import (
    Credentials,
    Repository,
    credentials_from_env,
    digest_of,
    fetch_blob,
    fetch_manifest_bytes,
    parse_repository,
)
from conjure_sandbox.registry.documents import check_manifest, parse_object
from conjure_sandbox.request import BuildRequest, Export
from conjure_sandbox.runner import raise_if_failed
from conjure_sandbox.sbom import image_platforms, sbom_layers, spdx_document
from conjure_sandbox.tags import git_tag, parse_version, split_tag, version_tag

Log = Callable[[str], None]
Blob = Callable[[str], bytes]
SHOWN_FILES = 8


@dataclass(frozen=True)
class Image:
    """One platform's image: manifest digest, the manifest itself, and the digest of its
    SBOM's SPDX document (the attestation's predicate)."""

    digest: str
    manifest: Mapping[str, Any]
    sbom: str | None


@dataclass(frozen=True)
class LayerDifference:
    position: int  # 1-based, base layer first
    rebuilt: str | None
    published: str | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    variant: str
    platform: str
    rebuilt: Image
    published: Image | None
    config_differs: bool = False
    layers: tuple[LayerDifference, ...] = ()

    @property
    def same(self) -> bool:
        return (
            self.published is not None
            and self.published.digest == self.rebuilt.digest
            and self.published.sbom == self.rebuilt.sbom
        )


def images(
    root: Mapping[str, Any], root_digest: str, read: Blob, manifest: Blob | None = None
) -> dict[str, Image]:
    """Each platform's image behind an index (or a single manifest), with its SBOM layer.

    ``read`` gives a blob's bytes, ``manifest`` a manifest's (the same in a layout).
    """
    parsed = manifest or read
    if "manifests" not in root:
        platform = _platform(parse_object(read(root["config"]["digest"]), "an image config"))
        return {platform: Image(root_digest, root, None)}
    sboms = {
        subject: sbom_digest(read(layer))
        for subject, layer in sbom_layers(root, lambda digest: _manifest(parsed, digest))
    }
    return {
        name: Image(digest, _manifest(parsed, digest), sboms.get(digest))
        for digest, name in image_platforms(root).items()
    }


def sbom_digest(statement: bytes) -> str:
    """The digest of an in-toto statement's SPDX document, in canonical JSON.

    Not of the statement: its subject names the image as it was exported (with
    a tag, or none for CI's pushes by digest), which says nothing of the content.
    """
    predicate = spdx_document(statement, "an SBOM attestation")
    canonical = json.dumps(predicate, sort_keys=True, separators=(",", ":")).encode()
    return digest_of(canonical)


def _manifest(read: Blob, digest: str) -> dict[str, Any]:
    """A manifest by digest, checked for the shape this module reads."""
    where = f"manifest {digest[:19]}"
    return check_manifest(parse_object(read(digest), where), where)


def _platform(config: Mapping[str, Any]) -> str:
    return f"{config.get('os')}/{config.get('architecture')}"


# A layer is unpacked only to hash its files: a published layer is untrusted, and a
# small one can hold gigabytes of zeros. Files are hashed in chunks, and a layer with
# more than this in it is refused (the full image is about 5 GB unpacked).
LAYER_MAX_BYTES = 64 * 1024**3
LAYER_MAX_ENTRIES = 2_000_000
_CHUNK = 1024 * 1024


def _file_digest(handle: IO[bytes] | None, unpacked: list[int]) -> str:
    """A member's sha256, read in chunks; ``unpacked`` counts the layer's bytes so far."""
    digest = hashlib.sha256()
    while handle is not None and (chunk := handle.read(_CHUNK)):
        unpacked[0] += len(chunk)
        if unpacked[0] > LAYER_MAX_BYTES:
            raise _too_large(f"more than {LAYER_MAX_BYTES // 1024**2:,} MiB unpacked")
        digest.update(chunk)
    return digest.hexdigest()


def _too_large(what: str) -> SandboxError:
    return SandboxError(
        f"a layer holds {what}: refused as a decompression bomb",
        "check who pushed this image; no build of this project makes such a layer",
    )


def _entry_path(name: str) -> str:
    """A member's path from the root: ``./etc/x`` and ``etc/x`` alike, dotfiles kept."""
    return "/" + name.removeprefix("./").lstrip("/")


def layer_files(blob: bytes) -> dict[str, tuple[object, ...]]:
    """Every entry of a layer (zstd, gzip or plain): what it is, its mode, owner, link and
    content hash; a layer beyond the caps is one line."""
    entries: dict[str, tuple[object, ...]] = {}
    unpacked = [0]
    with layer_tar(blob) as archive:
        for count, member in enumerate(archive, start=1):
            if count > LAYER_MAX_ENTRIES:
                raise _too_large(f"more than {LAYER_MAX_ENTRIES:,} entries")
            content = ""
            if member.isfile():
                content = _file_digest(archive.extractfile(member), unpacked)
            entries[_entry_path(member.name)] = (
                member.type,
                member.mode,
                member.uid,
                member.gid,
                member.linkname,
                member.mtime,
                content,
            )
    return entries


def differing_files(rebuilt: bytes, published: bytes) -> tuple[str, ...]:
    """Paths present on one side only, or with different content or metadata, sorted."""
    ours, theirs = layer_files(rebuilt), layer_files(published)
    return tuple(
        sorted(path for path in ours.keys() | theirs.keys() if ours.get(path) != theirs.get(path))
    )


def compare(
    variant: str,
    platform: str,
    rebuilt: Image,
    published: Image | None,
    read_rebuilt: Blob,
    read_published: Blob,
) -> Comparison:
    """Where the two images of one platform differ: config, and layer by layer, file by file."""
    if published is None or published.digest == rebuilt.digest:
        return Comparison(variant, platform, rebuilt, published)
    ours = [layer["digest"] for layer in rebuilt.manifest.get("layers", ())]
    theirs = [layer["digest"] for layer in published.manifest.get("layers", ())]
    differences = []
    for position in range(max(len(ours), len(theirs))):
        mine = ours[position] if position < len(ours) else None
        other = theirs[position] if position < len(theirs) else None
        if mine == other:
            continue
        files = differing_files(
            read_rebuilt(mine) if mine else _EMPTY_TAR,
            read_published(other) if other else _EMPTY_TAR,
        )
        differences.append(LayerDifference(position + 1, mine, other, files))
    config_differs = rebuilt.manifest.get("config") != published.manifest.get("config")
    return Comparison(variant, platform, rebuilt, published, config_differs, tuple(differences))


_EMPTY_TAR = b"\0" * 1024


def report(results: list[Comparison]) -> list[str]:
    """One line per platform, then what differs."""
    lines = []
    for r in results:
        where = f"{r.variant:<8} {r.platform:<12}"
        if r.published is None:
            lines.append(f"{where} NOT PUBLISHED: the registry's index has no such platform")
        elif r.same:
            lines.append(f"{where} same digest {r.rebuilt.digest}, same SBOM")
        elif r.published.digest == r.rebuilt.digest:
            lines.append(
                f"{where} same digest {r.rebuilt.digest}, but the SBOM differs "
                f"(rebuilt {r.rebuilt.sbom}, published {r.published.sbom})"
            )
        else:
            lines.append(
                f"{where} DIFFERS: rebuilt {r.rebuilt.digest}, published {r.published.digest}"
            )
            if r.config_differs:
                lines.append("    the config differs (labels, environment or history)")
            for layer in r.layers:
                count = len(layer.files)
                lines.append(
                    f"    layer {layer.position}: rebuilt {layer.rebuilt or '-'}, "
                    f"published {layer.published or '-'}; {count} file(s) differ"
                )
                lines.extend(f"      {path}" for path in layer.files[:SHOWN_FILES])
                if count > SHOWN_FILES:
                    lines.append(f"      ... and {count - SHOWN_FILES} more")
    lines.append("Provenance attestations are not compared: they record when each build ran.")
    return lines


@contextmanager
def worktree(repository: Path, tag: str) -> Iterator[Path]:
    """A clean, detached checkout of ``tag``, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="conjure-verify-"))
    checkout = scratch / "src"
    added = subprocess.run(
        ["git", "-C", str(repository), "worktree", "add", "--detach", str(checkout), tag],
        capture_output=True,
        text=True,
        check=False,
    )
    if added.returncode != 0:
        scratch.rmdir()
        raise SandboxError(
            f"cannot check out {tag}: {added.stderr.strip().splitlines()[-1:]}",
            f"fetch the release's tag (git fetch origin tag {tag})",
        )
    try:
        yield checkout
    finally:
        subprocess.run(
            ["git", "-C", str(repository), "worktree", "remove", "--force", str(checkout)],
            capture_output=True,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


def verify(
    settings: Settings,
    version: str,
    *,
    variants: tuple[str, ...] = (),
    platforms: tuple[str, ...] = (),
    repository: Path | None = None,
    log: Log = print,
) -> list[Comparison]:
    """Rebuild ``version`` from its tag without cache and compare it with the registry.

    ``repository``: the git checkout holding the tag (default: this one).
    """
    version = str(parse_version(version))
    repository = repository or docker_dir().parent
    credentials = credentials_from_env(settings.image)
    with (
        worktree(repository, git_tag(version)) as checkout,
        tempfile.TemporaryDirectory(prefix="conjure-verify-layouts-") as layouts,
    ):
        context = checkout / "docker"
        catalogue = load_catalogue(context)
        published: dict[str, tuple[Repository, dict[str, Image]]] = {}
        for variant in catalogue.select(variants):
            ref = version_tag(settings.image, version, variant)
            name, tag = split_tag(ref)
            remote = parse_repository(name)
            # One read of the tag: the document compared is the one whose digest is reported.
            served = fetch_manifest_bytes(remote, tag, credentials)
            found = images(
                json.loads(served),
                digest_of(served),
                _remote_blobs(remote, credentials),
                _remote_manifests(remote, credentials),
            )
            published[variant.name] = (remote, found)
            _check_base(settings, variant.name, found, remote, credentials)
            log(f"{ref}: published for {', '.join(sorted(found))}")
        wanted = platforms or tuple(sorted({p for _, found in published.values() for p in found}))
        log(f"rebuilding {git_tag(version)} without cache for {', '.join(wanted)}")
        request = BuildRequest(
            variants=variants,
            platforms=wanted,
            output=Export(Path(layouts)),
            version=version,
            cache=False,
            cache_store="none",
            progress="quiet",
            context=context,
        )
        _, results = build_images(request, settings=settings, log=log)
        raise_if_failed(results)
        comparisons = []
        for result in results:
            layout = Path(layouts) / f"{result.variant}.tar"
            with OciLayout(layout, "verify again") as oci:
                local = oci.blob
                root_digest = result.digest or ""
                rebuilt = images(json.loads(local(root_digest)), root_digest, local)
                remote, found = published[result.variant]
                for platform in sorted(rebuilt):
                    comparisons.append(
                        compare(
                            result.variant,
                            platform,
                            rebuilt[platform],
                            found.get(platform),
                            local,
                            _remote_blobs(remote, credentials),
                        )
                    )
    return comparisons


def _remote_blobs(remote: Repository, credentials: Credentials | None) -> Blob:
    return lambda digest: fetch_blob(remote, digest, credentials)


def _remote_manifests(remote: Repository, credentials: Credentials | None) -> Blob:
    return lambda digest: fetch_manifest_bytes(remote, digest, credentials)


def _check_base(
    settings: Settings,
    variant: str,
    found: Mapping[str, Image],
    remote: Repository,
    credentials: Credentials | None,
) -> None:
    """Refuse early when the local base is not the one the release was built on."""
    from conjure_sandbox.engine import local_images

    for image in found.values():
        digest = image.manifest["config"]["digest"]
        config = parse_object(fetch_blob(remote, digest, credentials), f"config {digest[:19]}")
        settings_part = config.get("config")
        labels = settings_part.get("Labels") if isinstance(settings_part, dict) else None
        wanted = labels.get(BASE_DIGEST_LABEL) if isinstance(labels, dict) else None
        if not wanted:
            continue
        base = settings.base_image
        have = (local_images([base]) or {}).get(base)
        if have is None or have.id != wanted:
            raise SandboxError(
                f"{variant} was built on base {wanted}, but {base} is "
                f"{have.id if have else 'missing'}",
                "rebuild the base from the same Debian archive state (invoke base with "
                "CONJURE_DEBIAN_MIRROR set to a snapshot), or set CONJURE_BASE to that base",
            )
        return
