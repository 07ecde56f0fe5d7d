"""SBOMs made here: the generator image BuildKit runs on every exported image, and
what an image's SBOM attestation lists.

The generator (``docker/sbom/``) is syft from its pinned PyPI wheel on the
same base as the sandbox images, so no Docker Hub scanner is needed. Its tag
is the digest of the files it is built from: a changed generator is a new
tag, which changes the build command line, and so every image's inputs.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conjure_sandbox.cabundle import secret_spec
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import SBOM_GENERATOR_DIR, Settings, docker_dir
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.provenance import read_provenance
from conjure_sandbox.registry import (
    Credentials,
    credentials_from_env,
    fetch_blob,
    fetch_document,
    parse_repository,
    split_digest_ref,
)
from conjure_sandbox.registry.documents import parse_object
from conjure_sandbox.tags import split_tag, version_tag
from conjure_sandbox.version import package_version

if TYPE_CHECKING:
    from python_on_whales import DockerClient

GENERATOR_DIR = SBOM_GENERATOR_DIR
GENERATOR_REPOSITORY = "conjure-sandbox/sbom-generator"
# Files of the build context the generator's Dockerfile reads.
GENERATOR_INPUTS = (GENERATOR_DIR, "with-ca-bundle")
SPDX = "https://spdx.dev/Document"
ATTESTATION = "attestation-manifest"


def generator_ref(docker_dir: Path) -> str:
    """``conjure-sandbox/sbom-generator:<digest of its files>``."""
    digest = hashlib.sha256()
    for name in GENERATOR_INPUTS:
        root = docker_dir / name
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(docker_dir)).encode() + b"\0")
                digest.update(path.read_bytes())
    return f"{GENERATOR_REPOSITORY}:{digest.hexdigest()[:16]}"


def ensure_generator(
    client: DockerClient,
    docker_dir: Path,
    *,
    base: str,
    ca_bundle: Path | None,
    log: Callable[[str], None],
) -> str:
    """The generator image in the engine, built for this machine's platform when missing.

    BuildKit runs the generator on the build machine, whatever platform it scans.
    """
    from python_on_whales.exceptions import DockerException

    ref = generator_ref(docker_dir)
    if client.image.exists(ref):
        return ref
    epoch = read_provenance("", docker_dir, GENERATOR_INPUTS).epoch
    log(f"building the SBOM generator {ref} (syft from PyPI, on {base})")
    try:
        client.buildx.build(
            docker_dir,
            file=docker_dir / GENERATOR_DIR / "Dockerfile",
            build_args={"BASE": base, "SOURCE_DATE_EPOCH": str(epoch)},
            secrets=[secret_spec(ca_bundle)] if ca_bundle else [],
            tags=[ref],
            load=True,
            progress=False,
        )
    except DockerException as error:
        tail = (error.stderr or str(error)).strip().splitlines()[-1:]
        raise SandboxError(
            f"building the SBOM generator failed: {' '.join(tail)}",
            "check that pypi.org is reachable (CONJURE_CA_BUNDLE behind a proxy), "
            "or build without SBOMs (CONJURE_SBOM=0)",
        ) from None
    return ref


def package_types(document: Mapping[str, Any]) -> Counter[str]:
    """Packages of an SPDX document by package URL type (deb, pypi, npm, ...)."""
    types: Counter[str] = Counter()
    for package in document.get("packages", ()):
        purls = [
            ref["referenceLocator"]
            for ref in package.get("externalRefs", ())
            if ref.get("referenceType") == "purl"
        ]
        if purls:
            types[purls[0].removeprefix("pkg:").split("/", 1)[0]] += 1
    return types


def package_names(document: Mapping[str, Any], kind: str) -> set[str]:
    """The names of an SPDX document's packages of one package URL type."""
    names = set()
    for package in document.get("packages", ()):
        for ref in package.get("externalRefs", ()):
            locator = str(ref.get("referenceLocator", ""))
            if ref.get("referenceType") == "purl" and locator.startswith(f"pkg:{kind}/"):
                names.add(str(package["name"]))
    return names


def attested_for(entry: Mapping[str, Any]) -> str | None:
    """The digest of the image an index entry attests to, or None for an image entry."""
    annotations = entry.get("annotations") or {}
    if annotations.get("vnd.docker.reference.type") != ATTESTATION:
        return None
    return str(annotations.get("vnd.docker.reference.digest", ""))


def image_platforms(index: Mapping[str, Any]) -> dict[str, str]:
    """The image entries of an index, attestations left out: digest to ``os/arch``."""
    return {
        str(entry["digest"]): f"{platform.get('os')}/{platform.get('architecture')}"
        for entry in index.get("manifests") or ()
        if attested_for(entry) is None
        for platform in (entry.get("platform") or {},)
    }


def sbom_layers(
    index: Mapping[str, Any], manifest: Callable[[str], Mapping[str, Any]]
) -> Iterator[tuple[str, str]]:
    """For each SBOM in an image index: the digest of the image it describes and the
    digest of the layer holding its in-toto SPDX statement.

    ``manifest`` gives the parsed manifest of a digest (from a registry or a layout).
    """
    for entry in index.get("manifests") or ():
        subject = attested_for(entry)
        if subject is None:
            continue
        for layer in manifest(entry["digest"]).get("layers", ()):
            if (layer.get("annotations") or {}).get("in-toto.io/predicate-type") == SPDX:
                yield subject, layer["digest"]


def spdx_document(statement: bytes, where: str) -> dict[str, Any]:
    """The SPDX document an in-toto SBOM statement carries (its predicate); one line if none."""
    predicate = parse_object(statement, where).get("predicate")
    if not isinstance(predicate, dict):
        raise SandboxError(f"{where} has no SPDX document", "publish it again")
    return predicate


def attested_sboms(ref: str, credentials: Credentials | None = None) -> dict[str, dict[str, Any]]:
    """Each platform's SPDX document, from the SBOM attestations of ``repo:tag`` or
    ``repo@digest``."""
    name, reference = _split(ref)
    repository = parse_repository(name)
    index = fetch_document(repository, reference, credentials)
    platforms = image_platforms(index)
    found: dict[str, dict[str, Any]] = {}
    for subject, layer in sbom_layers(
        index, lambda digest: fetch_document(repository, digest, credentials)
    ):
        where = f"{repository.name}: SBOM attestation {layer[:19]}"
        statement = fetch_blob(repository, layer, credentials)
        found[platforms.get(subject, "unknown")] = spdx_document(statement, where)
    if not found:
        raise SandboxError(
            f"{ref} carries no SBOM attestation",
            "publish it with an SBOM (invoke build attaches one unless CONJURE_SBOM=0)",
        )
    return found


def summary(ref: str, documents: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Per platform, packages by type: what ``invoke sbom`` prints."""
    lines = [f"SBOM of {ref}"]
    for platform, document in sorted(documents.items()):
        types = package_types(document)
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(types.items()))
        creators = ", ".join(document.get("creationInfo", {}).get("creators", ()))
        lines.append(f"  {platform}: {sum(types.values())} packages ({counts})")
        lines.append(f"    made by {creators}")
    return lines


def _split(ref: str) -> tuple[str, str]:
    return split_digest_ref(ref) or split_tag(ref)


def describe_published(
    settings: Settings, variant: str | None, version: str | None = None, ref: str | None = None
) -> list[str]:
    """``invoke sbom``: the summary of a published image's SBOMs, by variant and version."""
    if not ref:
        chosen = load_catalogue(docker_dir()).get(variant)
        ref = version_tag(settings.image, version or package_version(), chosen)
    return summary(ref, attested_sboms(ref, credentials_from_env(settings.image)))
