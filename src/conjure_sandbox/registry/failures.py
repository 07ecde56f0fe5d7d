"""What counts as a registry's passing failure (a 5xx, a network error), retried as
``retry.REGISTRY`` says, and the one line when it does not pass."""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.parse
import urllib.request

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry.transport import MiB, Overdue, Oversize
from conjure_sandbox.retry import REGISTRY


class ServerError(SandboxError):
    """The registry kept answering 5xx for one request, through every retry."""


# What fails a request before any HTTP answer: refused, reset, timed out, unresolvable
# (all OSError, urllib's URLError included), or a reply cut off mid-way.
NETWORK_ERRORS = (OSError, http.client.HTTPException)
# Such an answer as docker and buildx print it: "unexpected status from HEAD request
# to http://...: 500 Internal Server Error".
SERVER_ERROR = re.compile(r"\b(5\d\d) (Internal Server Error|Bad Gateway|Service Unavailable)\b")
# A network error as docker and buildx print it (Go's net errors).
NETWORK_ERROR = re.compile(
    r"connection refused|connection reset by peer|i/o timeout|no such host|"
    r"TLS handshake timeout|unexpected EOF|broken pipe",
    re.IGNORECASE,
)


def retry_after(what: str, code: int, attempt: int) -> bool:
    """Whether to try ``what`` again after HTTP ``code``; says so on stderr when it does."""
    return code >= 500 and REGISTRY.again(what, f" answered HTTP {code}", attempt)


def network_reason(error: BaseException) -> str:
    """``Connection refused`` rather than ``<urlopen error [Errno 111] ...>``."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def retry_network(what: str, error: BaseException, attempt: int) -> bool:
    """Whether to try ``what`` again after a network error; says so on stderr when it does."""
    return REGISTRY.again(what, f": {network_reason(error)}", attempt)


def unreachable(registry: str, error: BaseException) -> SandboxError:
    """The one line for a registry that stayed unreachable through every retry."""
    return SandboxError(
        f"{registry}: registry unreachable after {REGISTRY.tries} tries ({network_reason(error)})",
        "start the registry or check the address and the network, then run again",
    )


def bounded_error(where: str, error: Overdue | Oversize) -> SandboxError:
    """The one line for an answer that broke a bound: too slow as a whole, or too large."""
    if isinstance(error, Overdue):
        return SandboxError(
            f"{where}: no whole answer within the request's deadline",
            "check the registry and the network, then run again",
        )
    return SandboxError(
        f"{where}: the answer is over {error.cap // MiB} MiB, more than such a document holds",
        "check that the address is a container registry",
    )
