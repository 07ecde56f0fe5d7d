"""The release's vulnerability gate: report, allowlist, expiry and threshold (pure).

grype itself cannot run here: its vulnerability database is downloaded from
the internet, which this machine does not reach. So the report below is a
recorded one, written in the shape of grype's ``-o json`` output (matches of a
vulnerability, its severity and fix state, and the artifact), with made-up
IDs; the gate's logic is what is under test. In CI, docker.yml's merge job
runs the real scanner through ``invoke scan`` before anything is signed.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.scan import (
    Allowance,
    judge,
    load_allowlist,
    parse_allowlist,
    parse_report,
    scanner_path,
)

REPORT = Path(__file__).parent / "data" / "scan" / "grype-report.json"
TODAY = datetime.date(2026, 12, 7)
ROOT = Path(__file__).resolve().parents[2]


def test_only_fixable_critical_findings_block() -> None:
    verdict = judge(parse_report(json.loads(REPORT.read_text()), "r"), (), TODAY)
    # Not the high one, not the critical ones without a fix (not-fixed, wont-fix).
    assert [(f.id, f.package) for f in verdict.blocking] == [
        ("CVE-2099-0001", "openssl"),
        ("GHSA-xxxx-yyyy-zzzz", "lodash"),
    ]
    assert verdict.blocking[0].fixed_in == ("3.5.1-1",)


def test_an_unexpired_allowance_lets_a_finding_through_and_an_expired_one_does_not() -> None:
    findings = parse_report(json.loads(REPORT.read_text()), "r")
    today_is_last_day = Allowance("CVE-2099-0001", "waits on Debian", TODAY, "openssl")
    verdict = judge(findings, (today_is_last_day,), TODAY)
    assert [f.id for f in verdict.blocking] == ["GHSA-xxxx-yyyy-zzzz"]
    assert [(f.id, a.reason) for f, a in verdict.allowed] == [("CVE-2099-0001", "waits on Debian")]
    verdict = judge(findings, (today_is_last_day,), TODAY + datetime.timedelta(days=1))
    assert [f.id for f in verdict.blocking] == ["CVE-2099-0001", "GHSA-xxxx-yyyy-zzzz"]
    assert verdict.expired == (today_is_last_day,)
    assert any("expired" in line for line in verdict.lines("image"))


def test_an_allowance_for_another_package_does_not_cover_the_finding() -> None:
    findings = parse_report(json.loads(REPORT.read_text()), "r")
    elsewhere = Allowance("CVE-2099-0001", "only in curl", TODAY, "curl")
    verdict = judge(findings, (elsewhere,), TODAY)
    assert "CVE-2099-0001" in [f.id for f in verdict.blocking]
    assert verdict.allowed == ()


def test_the_threshold_can_be_lowered() -> None:
    findings = parse_report(json.loads(REPORT.read_text()), "r")
    assert "CVE-2099-0003" in [f.id for f in judge(findings, (), TODAY, "High").blocking]


GOOD_ENTRY = 'id = "CVE-2099-0001"\nreason = "waits on Debian"\nexpires = 2027-01-31\n'


def test_an_allowlist_entry_with_reason_and_expiry_is_read() -> None:
    (entry,) = parse_allowlist(f"[[allow]]\n{GOOD_ENTRY}", "a.toml", TODAY)
    assert entry == Allowance("CVE-2099-0001", "waits on Debian", datetime.date(2027, 1, 31))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[allow]]\nid = "CVE-1"\nexpires = 2027-01-31\n', "reason is not a string"),
        ('[[allow]]\nid = "CVE-1"\nreason = "r"\n', "expires is not a date"),
        ('[[allow]]\nid = "CVE-1"\nreason = "r"\nexpires = "2027-01-31"\n', "expires is not"),
        ('[[allow]]\nid = "CVE-1"\nreason = "r"\nexpires = 2027-01-31T00:00:00\n', "not a date"),
        ('[[allow]]\nid = "CVE-1"\nreason = "r"\nexpires = 2099-01-01\n', "more than 180 days"),
        (f"[[allow]]\n{GOOD_ENTRY}severity = 'low'\n", "keys are id, reason, expires"),
        (f"[[allow]]\n{GOOD_ENTRY}package = 5\n", "package is not a string"),
        ('[[allow]]\nid = ""\nreason = "r"\nexpires = 2027-01-31\n', "id is not a string"),
        ("[ignore]\n", "only [[allow]] entries"),
        ("[[allow]\n", "fix the TOML syntax"),
    ],
)
def test_a_bad_allowlist_entry_is_one_line(text: str, message: str) -> None:
    with pytest.raises(SandboxError) as caught:
        parse_allowlist(text, "a.toml", TODAY)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({}, "no list of matches"),
        ({"matches": [{}]}, "no vulnerability and artifact"),
        (
            {
                "matches": [
                    {"vulnerability": {"id": "X", "severity": "Dire"}, "artifact": {"name": "a"}}
                ]
            },
            "unknown severity",
        ),
        (
            {
                "matches": [
                    {
                        "vulnerability": {
                            "id": "X",
                            "severity": "Critical",
                            "fix": {"state": "fixed", "versions": "1.0"},
                        },
                        "artifact": {"name": "a"},
                    }
                ]
            },
            "fix.versions",
        ),
    ],
)
def test_a_report_of_the_wrong_shape_is_one_line(report: object, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        parse_report(report, "r.json")


def test_the_checked_in_allowlist_is_valid() -> None:
    assert load_allowlist(ROOT / "docker", TODAY) == ()


def test_a_missing_scanner_is_one_line_naming_how_to_install_it() -> None:
    with pytest.raises(SandboxError) as caught:
        scanner_path("conjure-no-such-scanner")
    assert "conjure-no-such-scanner is not installed" in str(caught.value)
    assert "download-grype" in str(caught.value)


def test_invoke_scan_judges_a_saved_report(tmp_path: Path) -> None:
    def scan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", "scan", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    blocked = scan("--report", str(REPORT))
    assert blocked.returncode == 1
    assert (
        "BLOCKING CVE-2099-0001 (Critical) in openssl 3.5.0-1, fixed in 3.5.1-1" in blocked.stdout
    )
    assert blocked.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in blocked.stderr
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps({"matches": []}))
    assert scan("--report", str(clean)).returncode == 0
