"""Which base image a build uses: the one asked for, or the local base loudly, never
silently and never when publishing. Pure: the engine and the registry are asked
through the functions passed in."""

from __future__ import annotations

from collections.abc import Callable

from conjure_sandbox.errors import SandboxError


def choose_base(
    *,
    wanted: str,
    local_base: str,
    explicit: bool,
    publishing: bool,
    is_present: Callable[[str], bool],
    is_pullable: Callable[[str], bool],
    warn: Callable[[str], None],
) -> str:
    """The base image a build uses, falling back to the local base loudly, never when publishing.

    ``explicit`` is true when the user named the base (``--base`` or
    ``CONJURE_BASE``); an explicit base is used as named or not at all.
    """
    if is_present(wanted):
        return wanted
    if wanted == local_base:
        raise SandboxError(f"base image {wanted} not found", "run `invoke base` to build it")
    if is_pullable(wanted):
        return wanted
    if explicit or publishing:
        raise SandboxError(
            f"base image {wanted} cannot be pulled"
            + ("; publishing never falls back to another base" if publishing else ""),
            "restore registry access, or set CONJURE_BASE=local (after `invoke base`)",
        )
    if not is_present(local_base):
        raise SandboxError(
            f"base image {wanted} cannot be pulled and the local base {local_base} is missing",
            "run `invoke base`, then build again (or set CONJURE_BASE=local)",
        )
    warn(
        f"WARNING: base image {wanted} cannot be pulled; building on the local base {local_base} "
        "instead (set CONJURE_BASE=local to say so explicitly)"
    )
    return local_base
