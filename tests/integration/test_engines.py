"""The engines users run (see ``tests/engines.py``): ensure_image's four outcomes, the local
fallback build, and the executor's contract, on each.

Every engine pulls the same pinned minimal image (the host's platform only: nothing
here runs under QEMU) from the shared loopback registry. Starting an engine needs root, as .ci/run's
integration session is.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conjure_sandbox import ensure_image
from conjure_sandbox.build import host_platform
from conjure_sandbox.config import EXECUTOR_FLAGS, Settings
from conjure_sandbox.engine import local_images
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.pins import Pin, Pins
from conjure_sandbox.pull import PullProgress
from conjure_sandbox.registry import fetch_blob, fetch_manifest, parse_repository
from conjure_sandbox.version import package_version
from tests.engines import (
    BUILDERS,
    ENGINE_VARIABLES,
    KINDS,
    Engine,
    Engines,
    as_account,
    chosen,
    rootless_account,
)
from tests.integration.conftest import ROOT, raw_manifest, run_invoke
from tests.registrypush import docker_push

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]

REPOSITORY = "conjure-test/engines"
FALLBACK = f"conjure-sandbox-local:untested-{package_version()}-minimal"


def _installed() -> dict[str, str]:
    """Whatever a test pointed the docker CLI at, undone for a subprocess."""
    return {name: "" for name in ENGINE_VARIABLES if name in os.environ}


@dataclass(frozen=True)
class Published:
    """The minimal image pushed to the loopback registry and pinned like a release's."""

    pins: Path
    image: str  # as the pins name it: on the provisioned registry's address
    digest: str
    platforms: dict[str, str]  # platform -> its manifest's digest

    def ref(self, engine: Engine) -> str:
        """The pinned reference as ``engine`` reaches the registry."""
        name = self.image.split("/", 1)[1]
        return f"{engine.registry}/{name}@{self.digest}"


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    image = f"{Settings.from_env().registry}/{REPOSITORY}"
    env = {"CONJURE_BASE": "local", "CONJURE_IMAGE": image, **_installed()}
    build = ("build", "--variant", "minimal", "--platform", host_platform(), "--no-sbom")
    with Engines() as engines:
        containerd_store = engines.get("installed").containerd_store
    # An index, as a release pushes, where the store can make one; on the classic store
    # (GitHub's runners) the lone manifest docker push makes of a loaded image.
    built = run_invoke(*build, "--push" if containerd_store else "--load", env=env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    if not containerd_store:
        with pytest.MonkeyPatch.context() as here:
            for name in (*ENGINE_VARIABLES, "DOCKER_CONFIG"):
                here.delenv(name, raising=False)
            docker_push(f"{image}:{package_version()}-minimal")
    found = fetch_manifest(parse_repository(image), f"{package_version()}-minimal")
    assert found is not None
    platforms = dict(found.platforms) or {host_platform(): found.digest}
    assert containerd_store is (found.platforms != {})
    pins = tmp_path_factory.mktemp("pins") / "pins.json"
    pins.write_text(
        Pins(
            package_version(), image, {"minimal": Pin(found.digest, dict(found.platforms))}
        ).to_json()
    )
    return Published(pins, image, found.digest, platforms)


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """Every engine, started once on first use (remote and context share one) and stopped
    when the session ends."""
    running = Engines()
    try:
        yield running
    finally:
        running.close()


def _engine(engines: Engines, kind: str, request: pytest.FixtureRequest) -> Engine:
    if kind != "installed":
        Engines.require(request.config)  # the tests start it
    running = engines.get(kind)
    if running.builds:
        running.load(Settings.from_env().local_base)  # the fallback builds FROM it
    return running


@pytest.fixture(params=chosen(KINDS))
def engine(engines: Engines, request: pytest.FixtureRequest) -> Engine:
    return _engine(engines, str(request.param), request)


@pytest.fixture(params=chosen(BUILDERS))
def builder(engines: Engines, request: pytest.FixtureRequest) -> Engine:
    """Each engine that buildx can build on."""
    return _engine(engines, str(request.param), request)


@pytest.fixture
def on(engine: Engine, published: Published, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The library pointed at ``engine`` and at the published pins; the pinned image and the
    fallback removed from the engine first."""
    _point_at(engine, monkeypatch)
    monkeypatch.setenv("CONJURE_PINS", str(published.pins))
    monkeypatch.setenv("CONJURE_IMAGE", published.image)
    engine.docker("image", "rm", "--force", published.ref(engine), FALLBACK, check=False)
    return engine


def _point_at(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The docker CLI (and so the library) talks to ``engine``; builds use the local base."""
    for key in (*ENGINE_VARIABLES, "DOCKER_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in engine.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CONJURE_BASE", "local")


def test_ensure_pulls_the_pin_with_progress_then_finds_it(on: Engine, published: Published) -> None:
    pinned = published.ref(on)
    if on.env:  # an engine of the tests' own: it holds nothing but the base
        on.empty(keep=Settings.from_env().local_base)
    said: list[str] = []
    seen: list[PullProgress] = []
    assert ensure_image("minimal", registry=on.registry, log=said.append, progress=seen.append) == (
        pinned
    )
    assert said == [f"{pinned}: pulled by digest"]
    # The installed engine may hold every blob already (it built them): then it names no
    # layer. An engine of the tests' own always downloads.
    assert seen or not on.env
    last = seen[-1] if seen else PullProgress(0, 0, 0, 0)
    assert last.layers_done == last.layers
    assert last.bytes_done == last.bytes_total
    if not on.containerd_store and on.kind != "podman":
        # The classic store names every layer and sizes each download; emptied, the engine
        # downloads all but the base's. (The containerd store names only the layers it
        # fetches, and Podman gives no sizes.)
        assert last.layers >= 3
        assert last.layers_present < last.layers
        assert last.bytes_total > 1_000_000
        assert any(p.bytes_done < last.bytes_total for p in seen)  # reported while it ran
    held = (local_images([pinned]) or {})[pinned]
    assert held.holds(pinned)
    # The containerd store names the image by the pinned index; the classic store and
    # Podman by its config, the one the pinned platform's manifest names: what holds there.
    if on.containerd_store:
        assert held.id == published.digest
    else:
        manifest = raw_manifest(f"{published.image}@{published.platforms[host_platform()]}")
        assert held.id == manifest["config"]["digest"]

    said.clear()
    assert ensure_image("minimal", registry=on.registry, log=said.append) == pinned
    assert said == [
        f"{pinned}: found in the local engine ({published.digest[:19]}, the pinned digest)"
    ]


def test_ensure_cli_shows_the_pull_on_stderr(on: Engine, published: Published) -> None:
    cli = subprocess.run(
        [
            *(sys.executable, "-m", "conjure_sandbox.cli", "ensure", "--variant", "minimal"),
            *("--registry", on.registry, "--no-build"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == published.ref(on)
    lines = cli.stderr.splitlines()
    pulling = [line for line in lines if line.startswith("pulling: ")]
    # The installed engine may hold every blob already and then names no layer.
    assert pulling or not on.env, cli.stderr
    for line in pulling[-1:]:
        done, _, total = line.split()[1].partition("/")
        assert done == total != "0", pulling
    assert lines[-1] == f"{published.ref(on)}: pulled by digest"


def test_a_tag_under_the_official_name_is_not_the_pin(on: Engine, published: Published) -> None:
    """An image built or tagged locally under the release's own name is never taken for it."""
    base = Settings.from_env().local_base
    on.load(base)
    official = f"{published.image}:{package_version()}-minimal"
    on.docker("tag", base, official)
    try:
        with pytest.raises(SandboxError) as caught:
            ensure_image("minimal", pull=False, build=False)
        assert str(caught.value).startswith("no image for minimal: not in the local engine")
    finally:
        on.docker("image", "rm", official, check=False)


def test_ensure_refuses_in_one_line_when_nothing_works(on: Engine) -> None:
    with pytest.raises(SandboxError) as caught:
        ensure_image("minimal", registry="127.0.0.1:9", build=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("no image for minimal: not in the local engine; pull failed (")


def test_the_fallback_builds_here_or_is_refused(
    on: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The fallback is announced at WARNING (default logging shows it) and builds on every
    engine buildx drives; on Podman it is refused in one line."""
    caplog.set_level(logging.WARNING, logger="conjure_sandbox")
    if not on.builds:
        with pytest.raises(SandboxError) as caught:
            ensure_image("minimal", pull=False)
        assert "local build failed (" in str(caught.value)
        assert "\n" not in str(caught.value)
        return
    assert ensure_image("minimal", pull=False) == FALLBACK
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned[-1] == f"{FALLBACK}: built locally; an untested fallback, not the published image"
    assert FALLBACK in (local_images([FALLBACK]) or {})


def test_the_executor_contract(on: Engine, published: Published) -> None:
    """The executor's flags (read-only root, tmpfs /tmp, no network, no new privileges, no
    capabilities), skills read-only, and a workspace the sandbox user writes, given to it
    the way this engine needs (see docs/engines.md)."""
    pinned = ensure_image("minimal", registry=on.registry, build=False)
    skills, work = on.workdir("skills"), on.workdir("workspace")
    (skills / "SKILL.md").write_text("# a skill\n")
    (skills / "SKILL.md").chmod(0o644)
    on.give_workspace(work, pinned)
    script = (
        "set -e; id -u; cat /mnt/skills/SKILL.md; echo hello > /workspace/out.txt; "
        "python3 -c \"import pathlib; p = pathlib.Path('/workspace/out.txt'); "
        "p.write_text(p.read_text().replace('hello', 'edited'))\"; "
        "touch /tmp/ok; ls /sys/class/net; "
        "for p in /mnt/skills/x /etc/x /usr/x; do touch $p 2>/dev/null && echo wrote $p; done; "
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"
    )
    ran = on.docker(
        *("run", "--rm", *EXECUTOR_FLAGS),
        *("-v", f"{skills}:/mnt/skills:ro", "-v", f"{work}:/workspace", pinned),
        *("bash", "-c", script),
    )
    assert ran.stdout.split("\n") == [
        "1000",
        "# a skill",
        "lo",
        "CapEff:\t0000000000000000",
        "NoNewPrivs:\t1",
        "",
    ], ran.stdout + ran.stderr
    assert (work / "out.txt").read_text() == "edited\n"


def test_invoke_build_fits_the_engine(
    builder: Engine, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``invoke build`` on this engine: on the classic store without the cache export the
    docker driver cannot give it, said once under the summary; ``invoke doctor`` names the
    store; a multi-platform load refused in one line naming the fix."""
    on = builder
    _point_at(on, monkeypatch)
    # No SBOM: its generator is an image of its own to build on each engine; the unit tests
    # check that the classic store drops SBOMs.
    built = run_invoke(
        *("build", "--variant", "minimal", "--no-sbom"),
        env={"CONJURE_IMAGE": "conjure-test/engine-build"},
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    summary = built.stdout[built.stdout.index("variant    platforms") :]
    note = "note: the engine's classic image store: built without a build cache export ("
    assert (summary.count(note) == 1) is (not on.containerd_store), summary
    # The same inputs as the published image (a build is reproducible). On the containerd
    # store the load is the very manifest that was pushed. The classic store keeps no
    # manifest, and its exporter writes a config of its own: what holds there is the
    # content, the same layers (diff IDs) and creation time as the pushed config's.
    ref = f"conjure-test/engine-build:{package_version()}-minimal"
    pushed = published.platforms[host_platform()]
    if on.containerd_store:
        assert on.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == pushed
    else:
        manifest = raw_manifest(f"{published.image}@{pushed}")
        blob = fetch_blob(parse_repository(published.image), manifest["config"]["digest"])
        config = json.loads(blob)
        shown = on.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref)
        assert json.loads(shown.stdout) == config["rootfs"]["diff_ids"]
        created = on.docker("image", "inspect", "--format", "{{.Created}}", ref).stdout.strip()
        assert created.startswith(config["created"].rstrip("Z"))
    doctor = run_invoke("doctor").stdout.splitlines()
    store = "containerd" if on.containerd_store else "classic"
    assert f"({store} image store" in doctor[0], doctor
    lost = [line for line in doctor if line.startswith("MISSING  containerd image store: off")]
    assert len(lost) == (0 if on.containerd_store else 1), doctor
    if on.containerd_store:
        return  # it can load both; the main suite builds arm64, this one builds nothing under QEMU
    both = run_invoke(
        *(
            "build",
            "--variant",
            "minimal",
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
            "--load",
        ),
        env={"CONJURE_IMAGE": "conjure-test/engine-build"},
    )
    assert both.returncode != 0
    assert both.stderr.startswith(
        "error: loading a multi-platform image needs the containerd image store"
    )
    assert both.stderr.count("\n") == 1


def test_a_build_goes_to_a_docker_context_through_builder(
    engines: Engines, request: pytest.FixtureRequest
) -> None:
    """``--builder <context>``: the provisioned engine's CLI builds and loads on the remote one."""
    engine = _engine(engines, "context", request)
    config = {"DOCKER_CONFIG": engine.env["DOCKER_CONFIG"], "CONJURE_BASE": "local"}
    image = "conjure-test/through-context"
    built = run_invoke(
        *("build", "--variant", "minimal", "--builder", "conjure-remote", "--no-sbom"),
        env={**config, "CONJURE_IMAGE": image},
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    ref = f"{image}:{package_version()}-minimal"
    assert engine.docker("image", "inspect", ref, check=False).returncode == 0
    here = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False)
    assert here.returncode != 0  # built and loaded there, not on this machine's engine


def test_podmans_own_cli_maps_the_executors_account_to_uid_1000(
    engines: Engines, published: Published, request: pytest.FixtureRequest
) -> None:
    """With Podman's CLI, ``--userns=keep-id:uid=1000,gid=1000`` makes the sandbox user the
    executor's own account: the workspace needs no hand-over, and what the sandbox writes
    belongs to the executor. (The docker CLI refuses that flag: see docs/engines.md.)"""
    podman = _engine(engines, "podman", request)
    pinned = published.ref(podman)
    podman.docker("pull", "--quiet", pinned)
    account = rootless_account()
    work = podman.workdir("keep-id")
    ran = subprocess.run(
        [
            *as_account(account, {}),
            *("podman", "run", "--rm", "--userns=keep-id:uid=1000,gid=1000", *EXECUTOR_FLAGS),
            *("-v", f"{work}:/workspace", pinned),
            *("bash", "-c", "id -u; echo hi > /workspace/out.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["1000"]
    assert (work / "out.txt").stat().st_uid == account.pw_uid


# The two above are about one engine each: not collected when CONJURE_ENGINES leaves it out.
if "context" not in chosen(KINDS):
    del test_a_build_goes_to_a_docker_context_through_builder
if "podman" not in chosen(KINDS):
    del test_podmans_own_cli_maps_the_executors_account_to_uid_1000
