"""The release's vulnerability gate: a scanner's findings for each tested image's SBOM,
judged against a severity threshold and an allowlist whose every entry has a reason and
an expiry date.

The scanner is grype (``grype sbom:<file> -o json``), run on the SPDX document
each tested image carries as its SBOM attestation. A finding blocks when it is
at or above the threshold (critical), a fixed version exists, and no unexpired
allowlist entry names it. Reading the report and the allowlist and judging
them (``gate``) is pure but for saying so; only ``scan_refs`` runs the scanner.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conjure_sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conjure_sandbox.config import Settings

# grype's severities, least first.
SEVERITIES = ("Unknown", "Negligible", "Low", "Medium", "High", "Critical")
THRESHOLD = "Critical"
ALLOWLIST_FILE = "scan-allowlist.toml"
# An exception granted for longer than this is a decision, not an allowance: revisit it.
LONGEST_ALLOWANCE = datetime.timedelta(days=180)
SCANNER = "grype"
INSTALL_FIX = (
    "install grype (https://github.com/anchore/grype#installation); in CI the "
    "anchore/scan-action/download-grype step provides it"
)


@dataclass(frozen=True)
class Finding:
    """One vulnerability in one package of one image."""

    id: str
    severity: str
    package: str
    version: str
    fixed_in: tuple[str, ...]  # empty: no fixed version exists

    def describe(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fix"
        return f"{self.id} ({self.severity}) in {self.package} {self.version}, {fix}"


@dataclass(frozen=True)
class Allowance:
    """An allowlist entry: a vulnerability (in one package, or any), why, and until when."""

    id: str
    reason: str
    expires: datetime.date
    package: str = ""

    def covers(self, finding: Finding) -> bool:
        return finding.id == self.id and self.package in ("", finding.package)


@dataclass(frozen=True)
class Verdict:
    blocking: tuple[Finding, ...]
    allowed: tuple[tuple[Finding, Allowance], ...]
    expired: tuple[Allowance, ...]  # no longer applied

    def lines(self, image: str) -> list[str]:
        out = [f"{image}: {len(self.blocking)} blocking, {len(self.allowed)} allowed"]
        out += [f"  BLOCKING {f.describe()}" for f in self.blocking]
        out += [
            f"  allowed  {f.describe()}: {a.reason} (until {a.expires})" for f, a in self.allowed
        ]
        out += [
            f"  expired  allowance for {a.id} ({a.expires}): applied no more" for a in self.expired
        ]
        return out


def _field(value: Mapping[str, Any], key: str, where: str) -> str:
    found = value.get(key)
    if not isinstance(found, str) or not found or not found.isprintable():
        raise SandboxError(
            f"{where}: {key} is not a string", "give the scanner's JSON report (-o json)"
        )
    return found


def parse_report(data: object, where: str) -> tuple[Finding, ...]:
    """The findings of a grype JSON report (``-o json``), checked for shape."""
    matches = data.get("matches") if isinstance(data, dict) else None
    if not isinstance(matches, list):
        raise SandboxError(f"{where}: no list of matches", "give grype's JSON report (-o json)")
    findings = []
    for number, match in enumerate(matches):
        at = f"{where} matches[{number}]"
        vulnerability = match.get("vulnerability") if isinstance(match, dict) else None
        artifact = match.get("artifact") if isinstance(match, dict) else None
        if not isinstance(vulnerability, dict) or not isinstance(artifact, dict):
            raise SandboxError(f"{at}: no vulnerability and artifact", "give grype's JSON report")
        severity = _field(vulnerability, "severity", at)
        if severity not in SEVERITIES:
            raise SandboxError(
                f"{at}: unknown severity {severity[:20]!r}", "give grype's JSON report"
            )
        fix = vulnerability.get("fix") or {}
        versions = fix.get("versions") if isinstance(fix, dict) else None
        fixed = isinstance(fix, dict) and fix.get("state") == "fixed"
        if fixed and (
            not isinstance(versions, list) or not all(isinstance(v, str) for v in versions)
        ):
            raise SandboxError(
                f"{at}: fix.versions is not a list of strings", "give grype's JSON report"
            )
        findings.append(
            Finding(
                _field(vulnerability, "id", at),
                severity,
                _field(artifact, "name", at),
                str(artifact.get("version", "")),
                tuple(versions or ()) if fixed else (),
            )
        )
    return tuple(findings)


def parse_allowlist(text: str, where: str, today: datetime.date) -> tuple[Allowance, ...]:
    """``[[allow]]`` entries: ``id``, ``reason``, ``expires`` (a date), optional ``package``.

    An entry without a reason or an expiry, or granted for more than
    ``LONGEST_ALLOWANCE`` from ``today``, is refused in one line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SandboxError(f"{where}: {error}", "fix the TOML syntax") from None
    entries = data.get("allow", [])
    if set(data) - {"allow"} or not isinstance(entries, list):
        raise SandboxError(f"{where}: only [[allow]] entries belong here", "see docs/releasing.md")
    allowances = []
    for number, entry in enumerate(entries, start=1):
        at = f"{where} entry {number}"
        if not isinstance(entry, dict) or set(entry) - {"id", "reason", "expires", "package"}:
            raise SandboxError(f"{at}: keys are id, reason, expires, package", "fix the entry")
        expires = entry.get("expires")
        if not isinstance(expires, datetime.date) or isinstance(expires, datetime.datetime):
            raise SandboxError(f"{at}: expires is not a date", "write expires = 2027-01-31")
        if expires - today > LONGEST_ALLOWANCE:
            raise SandboxError(
                f"{at}: allowed until {expires}, more than {LONGEST_ALLOWANCE.days} days ahead",
                "grant less time, and look again when it runs out",
            )
        package = entry.get("package", "")
        if not isinstance(package, str):
            raise SandboxError(f"{at}: package is not a string", "fix the entry")
        allowances.append(
            Allowance(_field(entry, "id", at), _field(entry, "reason", at), expires, package)
        )
    return tuple(allowances)


def judge(
    findings: Iterable[Finding],
    allowlist: Sequence[Allowance],
    today: datetime.date,
    threshold: str = THRESHOLD,
) -> Verdict:
    """Which findings block: at or above ``threshold``, fixable, and not allowed today."""
    floor = SEVERITIES.index(threshold)
    current = [a for a in allowlist if a.expires >= today]
    blocking, allowed = [], []
    for finding in findings:
        if SEVERITIES.index(finding.severity) < floor or not finding.fixed_in:
            continue
        allowance = next((a for a in current if a.covers(finding)), None)
        if allowance is None:
            blocking.append(finding)
        else:
            allowed.append((finding, allowance))
    expired = tuple(a for a in allowlist if a.expires < today)
    return Verdict(tuple(blocking), tuple(allowed), expired)


def load_allowlist(docker_dir: Path, today: datetime.date) -> tuple[Allowance, ...]:
    path = docker_dir / ALLOWLIST_FILE
    if not path.is_file():
        return ()
    return parse_allowlist(path.read_text(encoding="utf-8"), str(path), today)


def run_scanner(document: Mapping[str, Any], scanner: str) -> object:
    """grype's JSON report for one SPDX document."""
    with tempfile.TemporaryDirectory(prefix="conjure-scan-") as directory:
        sbom = Path(directory) / "sbom.spdx.json"
        sbom.write_text(json.dumps(document))
        done = subprocess.run(
            [scanner, f"sbom:{sbom}", "-o", "json"], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxError(f"{scanner} failed: {last[:200]}", "run it by hand to see why")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise SandboxError(f"{scanner} printed no JSON report", "check its version") from None


def scanner_path(given: str = "") -> str:
    """The scanner to run: ``given``, or grype on PATH; one line with the fix when missing."""
    found = shutil.which(given or SCANNER)
    if found is None:
        raise SandboxError(f"{given or SCANNER} is not installed", INSTALL_FIX)
    return found


def gate(
    reports: Iterable[tuple[str, tuple[Finding, ...]]],
    allowlist: Sequence[Allowance],
    today: datetime.date,
    log: Callable[[str], None] = print,
) -> None:
    """Judge each image's findings (``reports``: what was scanned, its findings), say so,
    and raise one line naming every blocking finding."""
    blocked = []
    for scanned, findings in reports:
        verdict = judge(findings, allowlist, today)
        for line in verdict.lines(scanned):
            log(line)
        blocked += [f"{f.id} in {f.package} ({scanned})" for f in verdict.blocking]
    if blocked:
        raise SandboxError(
            f"fixable {THRESHOLD.lower()} vulnerabilities: {', '.join(sorted(set(blocked)))}",
            f"upgrade the packages and rebuild, or allow each in docker/{ALLOWLIST_FILE} "
            "with a reason and an expiry date",
        )


def scan_refs(
    refs: Iterable[str],
    sboms: Callable[[str], Mapping[str, Mapping[str, Any]]],
    scanner: str,
) -> Iterator[tuple[str, tuple[Finding, ...]]]:
    """Each image's findings, per platform: grype on the SBOM ``sboms`` gives (from its
    attestation)."""
    for ref in refs:
        for platform, document in sorted(sboms(ref).items()):
            report = run_scanner(document, scanner)
            yield f"{ref} ({platform})", parse_report(report, f"{SCANNER} on {ref}")


def scan(
    settings: Settings,
    refs: Sequence[str] = (),
    report: Path | None = None,
    scanner: str = "",
    log: Callable[[str], None] = print,
) -> None:
    """``invoke scan``: judge a saved report, or scan the SBOMs of ``refs`` (default: every
    tested image on record) with grype; one line naming what blocks."""
    from conjure_sandbox import tested
    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.registry import credentials_from_env
    from conjure_sandbox.sbom import attested_sboms

    today = datetime.date.today()
    allowlist = load_allowlist(docker_dir(), today)
    if report is not None:
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SandboxError(
                f"cannot read {report} ({error})", "give grype's JSON report"
            ) from None
        gate([(str(report), parse_report(data, str(report)))], allowlist, today, log)
        return
    chosen = list(refs) or sorted({r.ref for r in tested.load(settings.tested_directory)})
    if not chosen:
        raise SandboxError(
            "nothing to scan: no --ref and no tested images on record",
            "run the image tests first, or name an image with --ref",
        )
    found = scanner_path(scanner)
    credentials = credentials_from_env(settings.image)
    images = scan_refs(chosen, lambda ref: attested_sboms(ref, credentials), found)
    gate(images, allowlist, today, log)
