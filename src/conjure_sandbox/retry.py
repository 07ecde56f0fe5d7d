"""Retry policies: one per kind of failure that passes by itself, each bounded and named.

Pure but for the wait. What counts as passing is decided where the failure is
seen (a registry's 5xx or a network error, a build that BuildKit cut off); how
often and how long to wait is decided here, once.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """``retries`` more tries after the first, waiting ``delay`` seconds, then twice that."""

    name: str
    retries: int
    delay: float = 0.0

    @property
    def tries(self) -> int:
        return self.retries + 1

    def again(self, what: str, reason: str, attempt: int) -> bool:
        """Whether to try ``what`` once more after its ``attempt``-th failure (from 0): if so,
        say why on stderr and wait."""
        if attempt >= self.retries:
            return False
        print(f"warning: {what}{reason}; retry {attempt + 1} of {self.retries}", file=sys.stderr)
        if self.delay:
            time.sleep(self.delay * 2**attempt)
        return True


# A registry answers 5xx now and then (Debian's: "invalid checksum digest format" on a
# push), and a connection is refused or reset now and then: every registry request, ours
# or docker's, is tried twice more.
REGISTRY = Policy("registry request", retries=2, delay=0.5)
# A build that BuildKit cut off (its session to the engine dropped under QEMU load, or a
# registry's 5xx while pushing) runs once more, alone, after the others: every finished
# step is cached by then.
CUT_OFF_BUILD = Policy("cut-off build", retries=1)
