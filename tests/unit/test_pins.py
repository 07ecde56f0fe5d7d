"""A release's pins (what ensure_image pulls) and the merge's tested-bytes check (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pin, Pins, load_pins, parse_pins
from conjure_sandbox.publish import SourceContent, signed_digests, untested_content
from conjure_sandbox.publishplan import VariantRelease
from conjure_sandbox.registry import RemoteManifest, Repository
from conjure_sandbox.tags import TagSet
from conjure_sandbox.version import same_version

A, B, C, D = ("sha256:" + c * 64 for c in "abcd")
PINS = Pins("0.1.0", "ghcr.io/holsee/conjure-sandbox", {"minimal": Pin(A, {"linux/amd64": B})})


def test_pins_round_trip_and_name_the_digest_reference(tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    path.write_text(PINS.to_json())
    loaded = load_pins(path)
    assert loaded == PINS
    assert loaded.reference("minimal") == f"ghcr.io/holsee/conjure-sandbox@{A}"
    assert loaded.reference("minimal", "127.0.0.1:5000/x/y") == f"127.0.0.1:5000/x/y@{A}"
    assert loaded.reference("full") is None
    assert load_pins(tmp_path / "absent.json") is None  # a source checkout


def _document(**changes: object) -> dict[str, object]:
    return {**json.loads(PINS.to_json()), **changes}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a pins document"),
        (_document(version="v0.1.0"), "starts with 'v'"),
        (_document(image="ghcr.io/x/y:latest"), "not an image repository"),
        (_document(variants={"minimal": {"index": "sha256:abc", "platforms": {}}}), "no platform"),
        (
            _document(variants={"minimal": {"index": "latest", "platforms": {"linux/amd64": B}}}),
            "'latest' is not a sha256 digest",
        ),
        (
            _document(variants={"minimal": {"index": A, "platforms": {"linux/amd64": "x"}}}),
            "'x' is not a sha256 digest",
        ),
        (
            _document(variants={"../x": {"index": A, "platforms": {"linux/amd64": B}}}),
            "not a variant pin",
        ),
        (
            _document(variants={"minimal": {"index": A, "platforms": {"windows/x": B}}}),
            "not a platform",
        ),
        # "$" would let each of these through with the newline at its end.
        (
            _document(variants={"minimal": {"index": A + "\n", "platforms": {"linux/amd64": B}}}),
            "is not a sha256 digest",
        ),
        (
            _document(variants={"minimal\n": {"index": A, "platforms": {"linux/amd64": B}}}),
            "not a variant pin",
        ),
        (
            _document(variants={"minimal": {"index": A, "platforms": {"linux/amd64\n": B}}}),
            "not a platform",
        ),
    ],
)
def test_a_bad_pins_document_is_one_line(document: object, message: str) -> None:
    with pytest.raises(SandboxError, match=message) as caught:
        parse_pins(document, "pins.json")
    assert "\n" not in str(caught.value)


def _release(sources: tuple[str, ...] = (), image_id: str = "") -> VariantRelease:
    return VariantRelease(
        "minimal",
        "",
        image_id,
        ("linux/amd64", "linux/arm64"),
        TagSet(("0.1.0-minimal",)),
        sources=sources,
    )


E, F = ("sha256:" + c * 64 for c in "ef")
# Two tested sources, each an index of its platform's image and that image's attestation.
TESTED = SourceContent({"linux/amd64": B, "linux/arm64": C}, frozenset({B, C, D, E}))


def test_the_merge_accepts_exactly_the_tested_images() -> None:
    index = RemoteManifest(A, (B, C, D, E), {"linux/amd64": B, "linux/arm64": C})
    assert untested_content(_release(("r@x", "r@y")), index, TESTED) is None
    assert untested_content(_release(image_id=A), index, None) is None


def test_the_merge_names_each_platform_that_is_not_the_tested_image() -> None:
    index = RemoteManifest(A, (B, F, D, E), {"linux/amd64": B, "linux/arm64": F})
    found = untested_content(_release(("r@x", "r@y")), index, TESTED)
    assert found == (
        f"linux/arm64 is {F[:19]}, not the tested {C[:19]}, "
        f"entries not from the tested sources: {F[:19]}"
    )
    assert "the index is" in (untested_content(_release(image_id=C), index, None) or "")


@pytest.mark.parametrize(
    ("entries", "platforms", "expected"),
    [
        # A forged attestation (unknown/unknown) beside the tested entries.
        ((B, C, D, E, F), {}, f"entries not from the tested sources: {F[:19]}"),
        # An extra platform: s390x is not among the tested sources.
        ((B, C, D, E, F), {"linux/s390x": F}, f"entries not from the tested sources: {F[:19]}"),
        ((B, C, D, E, E), {}, "an entry is listed twice"),
    ],
    ids=["forged attestation", "extra platform", "repeated entry"],
)
def test_an_index_with_anything_beyond_the_tested_entries_is_refused(
    entries: tuple[str, ...], platforms: dict[str, str], expected: str
) -> None:
    index = RemoteManifest(A, entries, {"linux/amd64": B, "linux/arm64": C, **platforms})
    assert untested_content(_release(("r@x", "r@y")), index, TESTED) == expected


def test_a_release_signs_each_verified_digest_by_name() -> None:
    indexes = {
        "minimal": RemoteManifest(A, (B, C), {"linux/amd64": B, "linux/arm64": C}),
        "lone": RemoteManifest(D, None),
    }
    repository = Repository("ghcr.io", "holsee/conjure-sandbox")
    assert signed_digests(repository, indexes) == [
        f"ghcr.io/holsee/conjure-sandbox@{digest}" for digest in (A, B, C, D)
    ]


@pytest.mark.parametrize(
    ("pinned", "installed", "same"),
    [
        ("0.1.0", "0.1.0", True),
        ("1.0.0-rc.1", "1.0.0rc1", True),  # what a wheel's metadata says of a prerelease
        ("1.0.0-alpha.2", "1.0.0a2", True),
        ("1.0.0-rc.1", "1.0.0", False),
        ("0.1.1", "0.1.0", False),
    ],
)
def test_a_pin_version_and_the_installed_version_are_compared_as_versions(
    pinned: str, installed: str, same: bool
) -> None:
    assert same_version(pinned, installed) is same
