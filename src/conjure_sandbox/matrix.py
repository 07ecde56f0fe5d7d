"""The CI matrix, from the catalogue: one job per variant and platform, on a native runner."""

from __future__ import annotations

from conjure_sandbox.catalogue import Catalogue, job_slug
from conjure_sandbox.errors import SandboxError

# GitHub's hosted runners by platform: arm64 builds run natively, never under QEMU.
RUNNERS = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}


def ci_matrix(catalogue: Catalogue) -> dict[str, list[dict[str, str]]]:
    """``{"include": [{variant, platform, runner, slug}, ...]}`` for ``strategy.matrix``."""
    include = []
    for variant in catalogue:
        for platform in variant.platforms:
            if platform not in RUNNERS:
                raise SandboxError(
                    f"no GitHub runner for {platform} (variant {variant.name})",
                    f"add it to RUNNERS in matrix.py; known: {', '.join(RUNNERS)}",
                )
            include.append(
                {
                    "variant": variant.name,
                    "platform": platform,
                    "runner": RUNNERS[platform],
                    "slug": job_slug(variant.name, (platform,)),
                }
            )
    return {"include": include}
