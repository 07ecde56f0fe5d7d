"""Nox sessions (``nox -l``): lint, unit tests, integration tests and per-variant image tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent / "src"))
from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import SBOM_GENERATOR_DIR, docker_dir

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"

CATALOGUE = load_catalogue(docker_dir())
# The variants tested for arm64 under QEMU in every run. full and python take most of a
# cold run's minutes emulated (28 of 30 in one test); ci.yml tests them, whole suite, on
# native arm64 runners, and `nox -s test_images_arm64` runs them here on demand.
EMULATED_EVERY_RUN = ("minimal", "node")
# Sessions that need no root (tag "images"): .ci/run runs them as a runner-like user.
IMAGES = "images"
nox.options.sessions = [
    *("lint", "unit", "integration", "test_images"),
    *(f"test_images_arm64(variant='{name}')" for name in EMULATED_EVERY_RUN),
    "test_images_classic",
]
# Set by .ci/run: where each pytest session writes its JUnit report.
JUNIT_DIR = os.environ.get("CONJURE_JUNIT_DIR")


def _install(session: nox.Session) -> None:
    # CI's publishing jobs pin every tool by hash (CONJURE_REQUIREMENTS); elsewhere the dev extra.
    pinned = os.environ.get("CONJURE_REQUIREMENTS")
    if pinned:
        session.install("--require-hashes", "-r", pinned)
        session.install("--no-deps", "-e", ".")
    else:
        session.install("-e", ".[dev]")


def _pytest(session: nox.Session, *args: str) -> None:
    report = [f"--junitxml={JUNIT_DIR}/{session.name}.xml"] if JUNIT_DIR else []
    session.run("pytest", *args, *report, *session.posargs)


@nox.session(tags=["check"])
def lint(session: nox.Session) -> None:
    """Ruff, mypy, shared layers in sync, hadolint, zizmor and schema on workflows."""
    _install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("invoke", "dockerfiles", "--check")
    generator = docker_dir() / SBOM_GENERATOR_DIR / "Dockerfile"
    dockerfiles = [*sorted(str(v.dockerfile) for v in CATALOGUE), str(generator)]
    session.run("hadolint", "--config", "docker/hadolint.yaml", *dockerfiles)
    workflows = sorted(str(p) for p in Path(".github/workflows").glob("*.yml"))
    session.run("zizmor", "--offline", *workflows)
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)


@nox.session(tags=["check"])
def unit(session: nox.Session) -> None:
    """Unit tests: no engine needed."""
    _install(session)
    _pytest(session, "tests/unit")


@nox.session(default=False)
def check_version(session: nox.Session) -> None:
    """Package version = git tag = image labels = tags to push = what ensure_image pulls."""
    _install(session)
    session.run("invoke", "check-version", *session.posargs)


@nox.session(default=False)
def verify(session: nox.Session) -> None:
    """Rebuild a release from its tag without cache and compare it with the registry."""
    if not session.posargs:
        session.error("usage: nox -s verify -- VERSION [--variant NAME] [--platform P]")
    _install(session)
    session.run("invoke", "verify", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Engine, registry, base image and CA-bundle tests against a real dockerd."""
    _install(session)
    _pytest(session, "tests/integration", "-m", "not cold_pairs")


@nox.session(default=False)
def reproducible(session: nox.Session) -> None:
    """Two cold builds each of minimal+node (amd64, arm64) and full+python (amd64): identical."""
    _install(session)
    _pytest(session, "tests/integration/test_reproducible.py", "-m", "cold_pairs", "--timeout=7200")


@nox.session(tags=[IMAGES])
@nox.parametrize("variant", list(CATALOGUE.names))
def test_images(session: nox.Session, variant: str) -> None:
    """Build one variant on the local base and run its image tests."""
    _install(session)
    _pytest(session, "tests/images", f"--variant={variant}")


@nox.session
@nox.parametrize("variant", list(CATALOGUE.names))
def test_images_classic(session: nox.Session, variant: str) -> None:
    """One variant's executor contract on a classic-store dockerd the tests start (root)."""
    _install(session)
    _pytest(session, "tests/images", f"--variant={variant}", "-m", "contract", "--engine=classic")


@nox.session
@nox.parametrize(
    "variant",
    [nox.param(v, tags=[IMAGES] if v in EMULATED_EVERY_RUN else []) for v in CATALOGUE.names],
)
def test_images_arm64(session: nox.Session, variant: str) -> None:
    """Build one variant for linux/arm64 (QEMU here): its contract, contents and each tool once."""
    _install(session)
    # A cold arm64 build under QEMU can outlast the default 30-minute per-test timeout.
    _pytest(
        session,
        *("tests/images", f"--variant={variant}", "--platform=linux/arm64"),
        *("-m", "contract or arm64", "--timeout=3600"),
    )
