"""Test records on disk: what a run covered survives the round trip; a bad file is one line."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.tested import Coverage, TestedImage, load, record, untested_platforms

IMAGE = TestedImage("minimal", "linux/arm64", "r/i:0.1.0-minimal", "sha256:" + "ab" * 32, "0.1.0")


def test_a_record_keeps_what_the_run_covered(tmp_path: Path) -> None:
    partial = Coverage(markers="contract", deselected=2, passed=9, paths=("tests/images/x.py",))
    record(tmp_path, replace(IMAGE, coverage=partial))
    (found,) = load(tmp_path)
    assert found.coverage == partial
    assert found.coverage.shortfall() == "-m 'contract', paths tests/images/x.py, 2 deselected"


def test_a_partial_run_never_replaces_a_complete_one(tmp_path: Path) -> None:
    complete = Coverage(passed=30)
    record(tmp_path, replace(IMAGE, coverage=complete))
    record(tmp_path, replace(IMAGE, coverage=Coverage(markers="contract", passed=9)))
    assert sorted(p.name.split(".", 2)[2] for p in tmp_path.iterdir()) == [
        "abababababababab.json",
        "abababababababab.partial.json",
    ]
    records = load(tmp_path)
    assert untested_platforms(records, "minimal", IMAGE.id, ["linux/arm64", "linux/amd64"]) == {
        "linux/amd64": ""
    }


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        json.dumps({"variant": "minimal"}),
        json.dumps({**asdict(IMAGE), "coverage": {"passed": 1, "colour": "red"}}),
        json.dumps({**asdict(IMAGE), "id": 7, "coverage": {"passed": 1}}),
        "[]",
    ],
)
def test_an_unreadable_record_is_a_one_line_error_naming_the_file(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "minimal.linux-arm64.abab.json").write_text(text)
    with pytest.raises(
        SandboxError, match=r"minimal\.linux-arm64\.abab\.json is unreadable"
    ) as caught:
        load(tmp_path)
    assert "\n" not in str(caught.value)
    assert "run the image tests again" in str(caught.value)
