"""The shapes of a registry's JSON documents, checked before any field is used.

A manifest, an index, a tag page or a token answer comes from a server that may
be hostile or broken. Each is checked once, where it is read, for the fields
this package uses and their types; past that point the code may index them
without guarding. What is wrong is one line naming the document and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry.reference import DIGEST

_FIX = "check that the address is a container registry serving OCI or Docker documents"


def _refuse(where: str, field: str, wanted: str) -> SandboxError:
    return SandboxError(f"{where}: {field} is not {wanted}", _FIX)


def parse_object(body: bytes, where: str) -> dict[str, Any]:
    """``body`` as a JSON object; anything else (not JSON, not UTF-8, a list) is refused."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON or not UTF-8, or nested past the stack
        document = None
    if not isinstance(document, dict):
        raise SandboxError(f"{where} is not a JSON object", _FIX)
    return document


def _string_map(value: object, where: str, field: str) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _refuse(where, field, "an object of strings")


def _descriptor(value: object, where: str, field: str) -> None:
    """A content descriptor: a valid digest; a size, media type and annotations if given."""
    if not isinstance(value, Mapping):
        raise _refuse(where, field, "an object")
    digest = value.get("digest")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise _refuse(where, f"{field}.digest", "a sha256 digest")
    size = value.get("size", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _refuse(where, f"{field}.size", "a size in bytes")
    if not isinstance(value.get("mediaType", ""), str):
        raise _refuse(where, f"{field}.mediaType", "a string")
    if "annotations" in value:
        _string_map(value["annotations"], where, f"{field}.annotations")
    if "platform" in value:
        platform = value["platform"]
        if not isinstance(platform, Mapping) or not all(
            isinstance(platform.get(key, ""), str) for key in ("os", "architecture", "variant")
        ):
            raise _refuse(where, f"{field}.platform", "an object with os and architecture")


def _descriptors(document: Mapping[str, Any], key: str, where: str) -> None:
    entries = document[key]
    if not isinstance(entries, list):
        raise _refuse(where, key, "a list")
    for number, entry in enumerate(entries):
        _descriptor(entry, where, f"{key}[{number}]")


def check_manifest(document: dict[str, Any], where: str) -> dict[str, Any]:
    """An image manifest or an index, its descriptors checked; returned as given."""
    if not isinstance(document.get("mediaType", ""), str):
        raise _refuse(where, "mediaType", "a string")
    if "manifests" in document:
        _descriptors(document, "manifests", where)
    if "layers" in document:
        _descriptors(document, "layers", where)
    if "config" in document:
        _descriptor(document["config"], where, "config")
    return document


def tag_page(document: Mapping[str, Any], where: str) -> list[str]:
    """The tags of one page of a tag list (``null`` or missing: none)."""
    tags = document.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise _refuse(where, "tags", "a list of strings")
    return tags


def token(document: Mapping[str, Any], where: str) -> str:
    """The bearer token of a token service's answer: ``token``, or OAuth2's ``access_token``."""
    # The distribution spec names it "token"; OAuth2-style services answer "access_token".
    value = document.get("token") or document.get("access_token")
    if not isinstance(value, str) or not value or not value.isprintable():
        raise _refuse(where, "token", "a token")
    return value
