"""``invoke doctor``: every prerequisite, one line each, with the fix for what is missing."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from conjure_sandbox import prerequisites
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import Settings, docker_dir
from conjure_sandbox.errors import SandboxError


def registry_answers(registry: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/", timeout=timeout) as response:
            return int(response.status) == 200
    except OSError:
        return False


def report(log: Callable[[str], None], settings: Settings | None = None) -> int:
    """Print the state of each prerequisite; 0 when all are there, 1 otherwise."""
    from python_on_whales import docker

    settings = settings or Settings.from_env()
    problems = 0

    def line(ok: bool, what: str, error: SandboxError | None = None) -> None:
        nonlocal problems
        problems += not ok
        log(f"{'ok ' if ok else 'MISSING'}  {what}" + (f": {error}" if error else ""))

    try:
        facts = prerequisites.probe(docker)
    except SandboxError as error:
        line(False, "engine", error)
        return 1
    line(True, facts.describe())
    platforms = load_catalogue(docker_dir()).default.platforms
    try:
        prerequisites.check_platforms(facts, platforms)
        line(True, f"platforms {', '.join(platforms)}")
    except SandboxError as error:
        line(False, "platforms", error)
    costs = facts.store_costs()
    if costs:
        line(
            False,
            "containerd image store",
            SandboxError(
                "off, so the docker driver builds with " + "; ".join(costs),
                f"add {prerequisites.CONTAINERD_STORE_SETTING} to /etc/docker/daemon.json and "
                "restart dockerd, or use a docker-container builder",
            ),
        )
    else:
        line(True, "multi-platform builds and loads, cache export, SBOM attestations")
    if prerequisites.image_present(docker, settings.local_base):
        line(True, f"local base {settings.local_base}")
    else:
        line(
            False,
            "local base",
            SandboxError(f"{settings.local_base} not built", "run `invoke base`"),
        )
    if registry_answers(settings.registry):
        line(True, f"registry http://{settings.registry}/v2/")
    else:
        line(
            False,
            "registry",
            SandboxError(
                f"nothing answers on {settings.registry}", "run scripts/provision-engine.sh"
            ),
        )
    return 1 if problems else 0
