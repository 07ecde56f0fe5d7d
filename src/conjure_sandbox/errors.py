"""The one exception type for failures a user must act on."""

from __future__ import annotations


class SandboxError(Exception):
    """A failure with a one-line explanation and the command or setting that fixes it.

    Command-line layers print ``str(error)`` and exit non-zero, never a traceback.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} (fix: {self.fix})" if self.fix else self.problem
