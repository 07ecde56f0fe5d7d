"""Knowing when nothing changed, so a no-op build answers "up to date" without BuildKit.

Every image carries a label with the digest of what it was built from (see
``inputs``). A loaded single-platform image of the right platform that still
carries the digest the plan would give it, under every tag the plan names, has
nothing to rebuild. Pure: the engine's answer comes in as ``LocalImage``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from conjure_sandbox.cache import exported
from conjure_sandbox.inputs import INPUTS_LABEL

if TYPE_CHECKING:
    from conjure_sandbox.engine import LocalImage
    from conjure_sandbox.plan import BuildTarget


def is_current(target: BuildTarget, known: Mapping[str, LocalImage]) -> bool:
    """True when a loaded image already carries this target's inputs digest and its cache exists."""
    if target.push or not target.load or not target.cache or not target.inputs:
        return False
    # The label says nothing of platforms: an image loaded for one cannot stand for two.
    if len(target.platforms) != 1:
        return False
    for tag in target.tags:
        image = known.get(tag)
        if image is None or image.labels.get(INPUTS_LABEL) != target.inputs:
            return False
        if image.platform and image.platform != target.platforms[0]:
            return False
    return all(exported(spec) for spec in target.cache_to)
