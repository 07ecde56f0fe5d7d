"""Image tests, per variant and platform.

``pytest tests/images --variant node [--platform linux/arm64]``; nox passes
both. Each selected variant is built once on the local base and loaded, then
one container, started exactly as the sandbox executor starts it, serves all
of that variant's checks.

A test marked ``needs(commands=..., modules=...)`` runs only for the variants
whose catalogue entry promises those; for the others it is deselected, not
skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conjure_sandbox.build import host_platform
from conjure_sandbox.catalogue import Variant, load_catalogue
from conjure_sandbox.config import EXECUTOR_FLAGS, Settings, docker_dir
from tests.engines import ENGINE_VARIABLES, Engine, Engines

if TYPE_CHECKING:
    from conjure_sandbox.tested import Coverage, TestedImage

CATALOGUE = load_catalogue(docker_dir())
TEST_IMAGE = "conjure-sandbox-test/sandbox"
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--variant",
        action="append",
        default=[],
        choices=list(CATALOGUE.names),
        help="variant to test (repeatable; default: all)",
    )
    parser.addoption(
        "--platform",
        default=host_platform(),
        help="platform to build and run the images for (default: the host's)",
    )
    parser.addoption(
        "--engine",
        default="installed",
        choices=("installed", "classic"),
        help="where the containers run: the provisioned engine, or a classic-store dockerd "
        "the tests start (root) and load the image into; builds stay on the provisioned one",
    )
    parser.addoption(
        "--image",
        default=None,
        help="test the images already built as IMAGE:<version>[-variant], or exactly IMAGE when "
        "it is repo@digest (pulled if absent), instead of building; record them as tested "
        "when every test passes (publishing needs that)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(commands=(), modules=(), node_modules=(), fonts=()): "
        "runs only for variants that promise these",
    )
    config.addinivalue_line("markers", "contract: the executor contract every variant must pass")
    config.addinivalue_line(
        "markers",
        "arm64: also run by test_images_arm64 under QEMU: what a variant promises is there, "
        "and each of its tools runs once (native runners run the whole suite)",
    )
    config.stash[_COVERAGE] = _RunCoverage()
    config.pluginmanager.register(config.stash[_COVERAGE], "conjure-run-coverage")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        chosen = CATALOGUE.select(metafunc.config.getoption("--variant"))
        metafunc.parametrize("variant", chosen, ids=[v.name for v in chosen], scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "@" in (config.getoption("--image") or ""):
        # The image is already in a registry (CI's repo@digest): the size test reads it there
        # and needs no local registry, so a runner without one does not skip it.
        for item in items:
            item.own_markers[:] = [m for m in item.own_markers if m.name != "registry"]
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("needs")
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("variant") if callspec else None
        if marker and isinstance(variant, Variant):
            wanted = {k: tuple(v) for k, v in marker.kwargs.items()}
            if not variant.expect.has(**wanted):
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.stash[_COVERAGE].not_promised.update(item.nodeid for item in drop)
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class _RunCoverage:
    """Counts what a run left out, so that only the complete suite records an image as tested."""

    def __init__(self) -> None:
        self.not_promised: set[str] = set()  # deselected by the catalogue's needs marker
        self.deselected = self.skipped = self.passed = 0

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += sum(item.nodeid not in self.not_promised for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped or hasattr(report, "wasxfail"):
            self.skipped += 1
        elif report.when == "call" and report.passed:
            self.passed += 1

    def of(self, config: pytest.Config) -> Coverage:
        from conjure_sandbox.tested import Coverage

        here = Path(__file__).parent.resolve()
        start = config.invocation_params.dir
        narrower = tuple(a for a in config.args if "::" in a or (start / a).resolve() != here)
        reruns = [
            flag
            for flag, option in (("--lf", "lf"), ("--sw", "stepwise"))
            if config.getoption(option, False)
        ]
        return Coverage(
            markers=config.option.markexpr,
            keywords=config.option.keyword,
            paths=narrower,
            deselected=self.deselected,
            skipped=self.skipped,
            reruns=", ".join(reruns),
            passed=self.passed,
        )


_COVERAGE = pytest.StashKey[_RunCoverage]()


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--platform"))


@pytest.fixture(scope="session")
def image(variant: Variant, platform: str, request: pytest.FixtureRequest) -> str:
    """The variant built for ``platform`` on the local base and loaded, or the ``--image`` one."""
    from conjure_sandbox.build import build_images
    from conjure_sandbox.request import BuildRequest

    prebuilt = request.config.getoption("--image")
    if prebuilt:
        return _prebuilt(request.config, prebuilt, variant, platform)
    settings = replace(Settings.from_env(), image=TEST_IMAGE, base="local")
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as here:
        for name in ENGINE_VARIABLES:  # built on the provisioned engine, wherever it runs
            here.delenv(name, raising=False)
        plan, results = build_images(
            BuildRequest(variants=(variant.name,), platforms=(platform,)),
            settings=settings,
            log=lines.append,
        )
    (result,) = results
    if not result.ok:
        pytest.fail(f"building {variant.name} failed:\n{result.error}", pytrace=False)
    ref = plan.targets[0].tags[0]
    if request.config.getoption("--engine") != "installed":
        engine: Engine = request.getfixturevalue("other_engine")
        engine.load(ref, replace=True)
    return ref


@pytest.fixture(scope="session")
def other_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The engine ``--engine`` names, started for the session; every docker command the
    tests run goes there."""
    Engines.require(request.config)
    engines = Engines()
    try:
        engine = engines.get(str(request.config.getoption("--engine")))
        with pytest.MonkeyPatch.context() as there:
            for name, value in engine.env.items():
                there.setenv(name, value)
            yield engine
    finally:
        engines.close()


def _prebuilt(config: pytest.Config, image: str, variant: Variant, platform: str) -> str:
    """An image built beforehand; noted so a fully passing session records it as tested."""
    from conjure_sandbox.engine import local_images
    from conjure_sandbox.plan import VERSION_LABEL
    from conjure_sandbox.tags import version_tag
    from conjure_sandbox.tested import TestedImage
    from conjure_sandbox.version import package_version

    ref = image if "@" in image else version_tag(image, package_version(), variant)
    found = (local_images([ref]) or {}).get(ref)
    if found is None and "@" in ref:
        subprocess.run(["docker", "pull", "--quiet", "--platform", platform, ref], check=False)
        found = (local_images([ref]) or {}).get(ref)
    if found is None:
        pytest.fail(f"{ref} is not in the engine (build it first: invoke build)", pytrace=False)
    version = found.labels.get(VERSION_LABEL, "")
    tested = TestedImage(variant.name, platform, ref, found.id, version)
    config.stash.setdefault(_TESTED, []).append(tested)
    return ref


_TESTED = pytest.StashKey[list["TestedImage"]]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Record the prebuilt images as tested, with what the run covered, when every test passed.

    Publishing accepts only a record of the complete suite; a partial run is
    recorded apart and says so here.
    """
    from conjure_sandbox.tested import record

    tested = session.config.stash.get(_TESTED, [])
    if exitstatus != 0 or session.testsfailed or not tested:
        return
    coverage = session.config.stash[_COVERAGE].of(session.config)
    shortfall = coverage.shortfall()
    what = (
        f"as a PARTIAL run ({shortfall}; publish needs the whole suite)"
        if shortfall
        else (f"as tested ({coverage.passed} passed, complete suite)")
    )
    directory = Settings.from_env().tested_directory
    for image in tested:
        path = record(directory, replace(image, coverage=coverage))
        print(f"\nrecorded {image.ref} ({image.id[:19]}) on {image.platform} {what}: {path}")


@dataclass(frozen=True)
class Sandbox:
    """A running container of one variant, driven the way the executor drives it."""

    container: str
    skills: Path
    work: Path

    def sh(self, command: str, *, check: bool = True, user: str | None = None) -> str:
        """``docker exec <container> bash -c <command>``: stdout, stripped.

        ``user="0"`` looks as root with every capability (the container has
        none), for checks that must see every file.
        """
        as_user = ["--user", user, "--privileged"] if user else []
        result = subprocess.run(
            ["docker", "exec", *as_user, self.container, "bash", "-c", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`{command[:200]}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result.stdout.strip()

    def python(self, script: str) -> str:
        """Run a Python script with the image's python3, as the executor's edits do."""
        quoted = script.replace("'", "'\\''")
        return self.sh(f"cd /tmp && python3 -c '{quoted}'")


@contextmanager
def start_sandbox(image: str, platform: str, root: Path) -> Iterator[Sandbox]:
    """A fresh container of ``image`` started exactly as the executor starts one."""
    skills, work = root / "skills", root / "work"
    skills.mkdir()
    work.mkdir()
    (skills / "SKILL.md").write_text("# a skill\n")
    shutil.copy(FIXTURES / "prices.xls", work / "prices.xls")
    if os.geteuid() == 0:
        os.chown(work, 1000, 1000)
    else:
        # A non-root runner (GitHub's is uid 1001) cannot chown: let uid 1000 write instead.
        work.chmod(0o777)
    argv = [
        *("docker", "run", "-d", "--platform", platform, *EXECUTOR_FLAGS),
        *("-v", f"{skills}:/mnt/skills:ro", "-v", f"{work}:/workspace"),
        *(image, "tail", "-f", "/dev/null"),
    ]
    container = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield Sandbox(container, skills, work)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


@pytest.fixture(scope="session")
def sandbox(
    image: str, platform: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """One container per variant, shared by the tests that do not need a fresh one."""
    with start_sandbox(image, platform, tmp_path_factory.mktemp("sandbox")) as started:
        yield started


@pytest.fixture
def fresh_sandbox(image: str, platform: str, tmp_path: Path) -> Iterator[Sandbox]:
    """A container of its own, for checks of what a tool does on first use."""
    with start_sandbox(image, platform, tmp_path) as started:
        yield started
