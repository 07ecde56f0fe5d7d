"""A release's pins (what ensure_image pulls) and the merge's tested-bytes check (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pin, Pins, load_pins, parse_pins
from conjure_sandbox.publish import untested_content
from conjure_sandbox.publishplan import VariantRelease
from conjure_sandbox.registry import RemoteManifest
from conjure_sandbox.tags import TagSet

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


def test_the_merge_accepts_exactly_the_tested_images() -> None:
    index = RemoteManifest(A, (B, C), {"linux/amd64": B, "linux/arm64": C})
    tested = {"linux/amd64": B, "linux/arm64": C}
    assert untested_content(_release(("r@x", "r@y")), index, tested) is None
    assert untested_content(_release(image_id=A), index, {}) is None


def test_the_merge_names_each_platform_that_is_not_the_tested_image() -> None:
    index = RemoteManifest(A, (B, D), {"linux/amd64": B, "linux/arm64": D})
    tested = {"linux/amd64": B, "linux/arm64": C}
    found = untested_content(_release(("r@x", "r@y")), index, tested)
    assert found == f"linux/arm64 is {D[:19]}, not the tested {C[:19]}"
    assert "the index is" in (untested_content(_release(image_id=C), index, {}) or "")
