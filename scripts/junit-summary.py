"""Add up the JUnit reports of every test session into one closing line.

Exits non-zero when a test failed or was skipped: in CI a skipped engine test
means the engine was missing, which must not pass as green.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(folder: Path) -> int:
    reports = sorted(folder.glob("*.xml"))
    if not reports:
        print(f"no JUnit reports in {folder}: no test ran")
        return 1
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in reports:
        for suite in ET.parse(report).getroot().iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"{len(reports)} test sessions")
    print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if failed or totals["skipped"] or totals["tests"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
