"""Maintainer tasks (``invoke --list``). Each is a thin call into conjure_sandbox."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from invoke import Context, task
from invoke.exceptions import Exit

from conjure_sandbox.errors import SandboxError

T = TypeVar("T")


def _user_errors(step: Callable[[], T]) -> T:
    """Run ``step``; a SandboxError becomes one line on stderr and exit 1, never a traceback."""
    try:
        return step()
    except SandboxError as error:
        raise Exit(f"error: {error}", code=1) from None


@task(
    auto_shortflags=False,
    iterable=["variant", "platform"],
    help={
        "all": "build every variant in the catalogue",
        "variant": "a variant to build (repeatable)",
        "platform": "a target platform, e.g. linux/arm64 (repeatable; default: the host's)",
        "load": "load the result into the engine (default for one platform)",
        "push": "push to the registry in the tag instead of loading",
        "tag": "tag prefix instead of <image>:<version> (the variant suffix is added)",
        "version": "version for tags and labels instead of the package's",
        "base": "base image reference (default: CONJURE_BASE, else the pin in docker/base.lock)",
        "cache": "cache between runs: a directory (default ~/.cache/conjure-sandbox/buildx), "
        "a registry repository, or none",
        "no_cache": "ignore cached layers (a fresh cache is still exported)",
        "progress": "plain (every log line, prefixed by variant) or quiet (start and end only)",
        "by_digest": "push untagged, by digest, into CONJURE_IMAGE (CI's per-platform jobs)",
        "digest_dir": "with --by-digest: write <variant>-<platform> files holding image@digest",
        "no_sbom": "no SBOM attestation (default: every loaded or pushed image gets one; "
        "CONJURE_SBOM=0 says the same)",
        "builder": "a buildx builder other than the default",
        "jobs": "variants to build at once (default 0: all)",
        "ca_bundle": "extra CA bundle (PEM) for pip/npm/curl in RUN steps; 'none' to pass none",
        "compression": "layer compression: zstd (default; CONJURE_COMPRESSION) or gzip, for "
        "engines before Docker 23",
        "dry_run": "print the plan and the buildx commands, build nothing",
    },
)
def build(
    c: Context,
    all: bool = False,
    variant: list[str] | None = None,
    platform: list[str] | None = None,
    load: bool = False,
    push: bool = False,
    tag: str | None = None,
    version: str | None = None,
    base: str | None = None,
    cache: str | None = None,
    no_cache: bool = False,
    progress: str = "plain",
    by_digest: bool = False,
    digest_dir: str | None = None,
    no_sbom: bool = False,
    builder: str | None = None,
    ca_bundle: str | None = None,
    compression: str | None = None,
    jobs: str = "0",
    dry_run: bool = False,
) -> None:
    """Build sandbox image variants with docker buildx."""
    from dataclasses import replace

    from conjure_sandbox.build import build_images, parse_jobs
    from conjure_sandbox.config import Settings
    from conjure_sandbox.request import BuildRequest, output_for
    from conjure_sandbox.runner import raise_if_failed, summary

    if not all and not variant:
        raise Exit("error: name what to build (fix: pass --all or --variant NAME)", code=2)

    settings = Settings.from_env()
    if ca_bundle:
        settings = replace(settings, ca_bundle=ca_bundle)
    if compression:
        settings = replace(settings, compression=compression)

    def run() -> None:
        request = BuildRequest(
            variants=() if all else tuple(variant or ()),
            platforms=tuple(platform or ()),
            output=output_for(load=load, push=push, by_digest=by_digest),
            tag=tag,
            version=version,
            base=base,
            cache=not no_cache,
            cache_store=cache,
            builder=builder,
            jobs=parse_jobs(jobs),
            progress=progress,
            sbom=settings.sbom and not no_sbom,
        )
        plan, results = build_images(request, settings=settings, dry_run=dry_run)
        if dry_run:
            print("\n".join(plan.describe()))
            return
        print("\n".join([*summary(results), *(f"note: {n}" for n in plan.notes)]))
        if digest_dir:
            from pathlib import Path

            from conjure_sandbox.build import write_digests

            for path in write_digests(plan, results, Path(digest_dir)):
                print(f"digest: {path} -> {path.read_text().strip()}")
        raise_if_failed(results)

    _user_errors(run)


@task(
    auto_shortflags=False,
    iterable=["platform"],
    help={
        "platform": "platform to include (repeatable; default linux/amd64 and linux/arm64)",
        "push": "push to CONJURE_REGISTRY instead of loading into the engine",
        "refresh": "debootstrap again instead of reusing the cached root file systems",
        "dry_run": "print the steps, do nothing",
    },
)
def base(
    c: Context,
    platform: list[str] | None = None,
    push: bool = False,
    refresh: bool = False,
    dry_run: bool = False,
) -> None:
    """Build the Debian base image from the Debian archive (no Docker Hub)."""
    from conjure_sandbox.base import make_base, plan_base, source_date_epoch
    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import BASE_SUITE, Settings, docker_dir

    settings = Settings.from_env()
    platforms = tuple(platform or ()) or load_catalogue(docker_dir()).default.platforms
    image = f"{settings.registry}/{settings.local_base}" if push else settings.local_base

    def run() -> None:
        plan = plan_base(
            image=image,
            platforms=platforms,
            suite=BASE_SUITE,
            mirror=settings.mirror,
            push=push,
            refresh=refresh,
            source_date_epoch=source_date_epoch(),
        )
        make_base(plan, dry_run=dry_run)

    _user_errors(run)


@task(auto_shortflags=False, help={"upgrade": "move every pin to its newest release"})
def lock(c: Context, upgrade: bool = False) -> None:
    """Compile the hashed lock files: docker/requirements*.lock and docker/npm/package-lock.json."""
    import shlex

    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.lock import PYTHON_LOCK, browser_lock_argv, lock_argv, npm_lock_argv

    c.run(shlex.join(lock_argv(docker_dir(), upgrade=upgrade)))
    python_lock = (docker_dir() / PYTHON_LOCK).read_text(encoding="utf-8")
    c.run(shlex.join(browser_lock_argv(docker_dir(), python_lock, upgrade=upgrade)))
    c.run(shlex.join(npm_lock_argv(docker_dir())))


@task(
    help={
        "check": "change nothing: fail when a Dockerfile's shared layers differ from docker/layers/"
    }
)
def dockerfiles(c: Context, check: bool = False) -> None:
    """Copy each shared layer from docker/layers/ into the variants' Dockerfiles."""
    import difflib

    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.dockerfiles import FIX, drifted

    catalogue = _user_errors(lambda: load_catalogue(docker_dir()))
    found = _user_errors(lambda: drifted([v.dockerfile for v in catalogue], catalogue.docker_dir))
    for drift in found:
        if check:
            lines = (drift.current.splitlines(True), drift.rendered.splitlines(True))
            sys.stdout.writelines(difflib.unified_diff(*lines, str(drift.dockerfile), "rendered"))
        else:
            drift.dockerfile.write_text(drift.rendered, encoding="utf-8")
            print(f"rewrote {drift.dockerfile}")
    if check and found:
        names = ", ".join(d.dockerfile.name for d in found)
        raise Exit(f"error: shared layers drifted in {names} (fix: {FIX})", code=1)


@task
def variants(c: Context) -> None:
    """List the variants in the catalogue."""
    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import docker_dir

    catalogue = _user_errors(lambda: load_catalogue(docker_dir()))
    for v in catalogue:
        mark = "*" if v.default else " "
        platforms = ",".join(v.platforms)
        print(f"{mark} {v.name:<8} {v.dockerfile.name:<20} {platforms:<24} {v.description}")


@task(
    auto_shortflags=False,
    iterable=["variant"],
    help={
        "variant": "publish only this variant (repeatable; default: all)",
        "force": "overwrite a version tag that holds another digest (says what it overwrites)",
        "maintenance": "allow a patch release on an older X.Y line (1.2.6 after 1.3.0)",
        "password_stdin": "read the registry password from stdin (user: CONJURE_REGISTRY_USER)",
        "from_digests": "merge tested per-platform images already pushed by digest (CI)",
        "edge": "a main-branch build at this commit: sha-<commit> and edge tags, never latest",
        "digest_file": "write an image@digest line per digest to sign: each index and its entries",
        "record": "write the release's index and platform digests (JSON, for invoke pin)",
        "dry_run": "print the check, every push and every tag move; push nothing",
    },
)
def publish(
    c: Context,
    variant: list[str] | None = None,
    force: bool = False,
    maintenance: bool = False,
    password_stdin: bool = False,
    from_digests: bool = False,
    edge: str = "",
    digest_file: str | None = None,
    record: str | None = None,
    dry_run: bool = False,
) -> None:
    """Push the tested images under their version tags, then move the floating tags."""
    from pathlib import Path

    from conjure_sandbox.config import Settings
    from conjure_sandbox.publish import publish as run_publish
    from conjure_sandbox.publishplan import PublishRequest, Route, publish_kind

    def run() -> None:
        request = PublishRequest(
            variants=tuple(variant or ()),
            route=Route.DIGESTS if from_digests else Route.ENGINE,
            kind=publish_kind(edge, maintenance),
            force=force,
            password_stdin=password_stdin,
            digest_file=Path(digest_file) if digest_file else None,
            record=Path(record) if record else None,
        )
        run_publish(Settings.from_env(), request, dry_run=dry_run)

    _user_errors(run)


@task(
    auto_shortflags=False,
    help={
        "bump": "patch, minor, major or prerelease (1.2.3 -> 1.2.4-rc.1)",
        "version": "the exact new version instead of a bump",
        "dry_run": "show the diff it would commit; change nothing",
    },
)
def release(
    c: Context, bump: str | None = None, version: str | None = None, dry_run: bool = False
) -> None:
    """Set the next version, date the changelog, commit and tag vX.Y.Z; never pushes."""
    from datetime import date
    from pathlib import Path

    from conjure_sandbox.release import apply, plan_release
    from conjure_sandbox.version import package_version

    def run() -> None:
        plan = plan_release(
            Path.cwd(), package_version(), bump=bump, version=version, today=date.today()
        )
        print(f"release {plan.old} -> {plan.new} (tag {plan.tag})")
        if dry_run:
            print("\n".join(plan.diff()))
            return
        apply(plan)

    _user_errors(run)


@task(
    auto_shortflags=False,
    help={
        "release_tag": "the git tag a release names (CI's release event), e.g. v0.2.0",
        "no_images": "skip the built images' labels (before anything is built)",
        "maintenance": "allow a patch release on an older X.Y line (1.2.6 after 1.3.0)",
    },
)
def check_version(
    c: Context, release_tag: str = "", no_images: bool = False, maintenance: bool = False
) -> None:
    """Check that one version is used everywhere (also: nox -s check_version)."""
    from conjure_sandbox import versioncheck
    from conjure_sandbox.config import Settings
    from conjure_sandbox.registry import credentials_from_env

    settings = Settings.from_env()
    _user_errors(
        lambda: versioncheck.run(
            settings,
            credentials=credentials_from_env(settings.image),
            images=not no_images,
            release_tag=release_tag,
            maintenance=maintenance,
        )
    )


@task(
    auto_shortflags=False,
    help={
        "runs": "timed runs per figure (median)",
        "cold_pairs": "pairs of cold builds, full alone then all (median of each side)",
        "out": "where to write the report",
        "images": "measure the images instead: first LibreOffice uses, first screenshot, "
        "first imports, sizes",
        "export": "measure the reproducible export against a plain push instead",
        "first_run": "measure a user's first run instead: every variant pushed in gzip and in "
        "zstd, then pulled and run by new engines (starts a second dockerd: root)",
        "engines": "measure ensure_image() on each kind of engine instead: pull and first "
        "result into emptied engines, and the time with the image present (root)",
        "baseline": "with --images: an earlier build of the default variant to compare the "
        "start and the cold imports with",
    },
)
def bench(
    c: Context,
    runs: int = 5,
    cold_pairs: int = 3,
    out: str = "docs/benchmarks.md",
    images: bool = False,
    export: bool = False,
    first_run: bool = False,
    engines: bool = False,
    baseline: str = "",
) -> None:
    """Benchmark builds against docker buildx bake (prunes the build cache), or the images."""
    from dataclasses import replace
    from pathlib import Path

    from benchmarks import builds, firstrun
    from benchmarks import export as export_bench
    from benchmarks import images as image_bench
    from conjure_sandbox.build import build_images, host_platform
    from conjure_sandbox.cabundle import resolve_ca_bundle
    from conjure_sandbox.config import Settings, docker_dir
    from conjure_sandbox.plan import BuildPlan
    from conjure_sandbox.request import BuildRequest

    settings = replace(Settings.from_env(), base="local")

    def run_images() -> None:
        if baseline:
            from conjure_sandbox.engine import local_images

            image_bench.require_baseline(baseline, local_images([baseline]))
        plan, results = build_images(BuildRequest(progress="quiet"), settings=settings)
        if not all(r.ok for r in results):
            raise Exit("error: a variant did not build (fix: see the log above)", code=1)
        root = docker_dir().parent
        bundle = resolve_ca_bundle(settings.ca_bundle)
        ratio = image_bench.run(
            plan, root, settings.registry, bundle, Path(out), host_platform(), runs, baseline
        )
        print(f"cold imports vs the design's sample: {ratio:.2f}x (goal <= 0.8x)")
        print(f"report: {out}")

    def dry_plan() -> BuildPlan:
        return build_images(BuildRequest(), settings=settings, dry_run=True, log=lambda _: None)[0]

    def run() -> None:
        if engines:
            from benchmarks import engines as engine_bench

            missed = engine_bench.run(settings.registry, Path(out), runs, docker_dir().parent)
            print("\n".join(f"goal missed: {line}" for line in missed) or "every goal met")
            print(f"report: {out}")
            return
        if first_run:
            plan = dry_plan()
            missed = firstrun.run(plan, docker_dir(), settings.registry, Path(out), runs)
            print("\n".join(f"goal missed: {line}" for line in missed) or "every goal met")
            print(f"report: {out}")
            return
        if images:
            run_images()
            return
        if export:
            plan = dry_plan()
            for f in export_bench.export_cost(plan, docker_dir(), settings.registry, Path(out)):
                print(f"{f.name}: {f.ratio:.2f}x {f.reference_name}")
            print(f"report: {out}")
            return
        plan = dry_plan()
        figures = builds.run(
            plan, docker_dir(), settings.registry, Path(out), runs=runs, cold_pairs=cold_pairs
        )
        for f in figures:
            print(f"{f.name} vs {f.reference_name}: {f.ratio:.2f}x (goal <= {f.goal}x)")
        print(f"report: {out}")

    _user_errors(run)


@task(auto_shortflags=False, help={"dry_run": "say what would change; write nothing"})
def base_pin(c: Context, dry_run: bool = False) -> None:
    """Move docker/base.lock's digest pin to what its tag holds now, saying what changed."""
    from conjure_sandbox.basepin import update_base_pin
    from conjure_sandbox.config import Settings, docker_dir

    image = Settings.from_env().image
    _user_errors(lambda: update_base_pin(docker_dir(), image, dry_run=dry_run))


@task(
    auto_shortflags=False,
    help={"runs": "ci.yml's runs on this commit (gh run list --json), for a release"},
)
def gate(c: Context, runs: str = "") -> None:
    """Refuse a publishing run no trusted branch started; print whether it is a maintenance one."""
    import os
    from pathlib import Path

    from conjure_sandbox.gate import Trigger, check

    trigger = Trigger(
        os.environ.get("GITHUB_EVENT_NAME", ""),
        os.environ.get("GITHUB_REF", ""),
        os.environ.get("RELEASE_TARGET", ""),
    )
    allowed = _user_errors(lambda: check(trigger, Path(runs) if runs else None))
    print(f"publishing from {allowed.event} {allowed.ref}", file=sys.stderr)
    print("true" if allowed.maintenance else "false")


@task(
    auto_shortflags=False,
    help={
        "record": "the file invoke publish --record wrote",
        "dry_run": "check the record against the registry; write nothing",
    },
)
def pin(c: Context, record: str, dry_run: bool = False) -> None:
    """Write a release's checked image digests into the package, before its wheel is built."""
    from pathlib import Path

    from conjure_sandbox.config import Settings
    from conjure_sandbox.pins import pin as write_pins

    _user_errors(lambda: write_pins(Settings.from_env(), Path(record), dry_run=dry_run))


@task(
    auto_shortflags=False,
    help={
        "variant": "the variant of this CI job",
        "platform": "the platform of this CI job, e.g. linux/arm64",
        "digest_dir": "where invoke build --digest-dir writes (the file appears only on resume)",
        "recorded": "the folder this run's digest artifacts were downloaded to (a re-run)",
        "edge": "a main-branch build at this commit (its sha- tag) instead of the version",
    },
)
def resume(
    c: Context, variant: str, platform: str, digest_dir: str, recorded: str = "", edge: str = ""
) -> None:
    """Reuse the image an earlier attempt of this CI run recorded, instead of rebuilding it."""
    from pathlib import Path

    from conjure_sandbox.config import Settings
    from conjure_sandbox.resume import resume as resume_published

    _user_errors(
        lambda: resume_published(
            Settings.from_env(),
            variant=variant,
            platform=platform,
            digest_dir=Path(digest_dir),
            recorded=Path(recorded) if recorded else None,
            edge=edge,
        )
    )


@task(
    auto_shortflags=False,
    help={
        "version": "the published version (default: the package's)",
        "ref": "any image reference instead (repo:tag or repo@digest)",
    },
)
def sbom(c: Context, variant: str | None = None, version: str | None = None, ref: str = "") -> None:
    """Summarise a published image's SBOM attestations: packages by type, per platform."""
    from conjure_sandbox.config import Settings
    from conjure_sandbox.sbom import describe_published

    for line in _user_errors(
        lambda: describe_published(Settings.from_env(), variant, version, ref or None)
    ):
        print(line)


@task(
    auto_shortflags=False,
    iterable=["variant", "platform"],
    help={
        "variant": "a variant to verify (repeatable; default: every variant)",
        "platform": "a platform to rebuild (repeatable; default: every published platform)",
    },
)
def verify(
    c: Context,
    version: str,
    variant: list[str] | None = None,
    platform: list[str] | None = None,
) -> None:
    """Rebuild a release from its git tag without cache and compare it with the registry."""
    from conjure_sandbox.config import Settings
    from conjure_sandbox.verify import report
    from conjure_sandbox.verify import verify as rebuild_and_compare

    results = _user_errors(
        lambda: rebuild_and_compare(
            Settings.from_env(),
            version,
            variants=tuple(variant or ()),
            platforms=tuple(platform or ()),
        )
    )
    print("\n".join(report(results)))
    if not all(r.same for r in results):
        raise Exit("error: the rebuild differs from what the registry publishes", code=1)


@task
def matrix(c: Context) -> None:
    """Print the CI matrix (variant x platform x runner) from the catalogue as JSON."""
    import json

    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.matrix import ci_matrix

    print(json.dumps(_user_errors(lambda: ci_matrix(load_catalogue(docker_dir())))))


@task
def doctor(c: Context) -> None:
    """Check the engine, buildx, emulation, image store and base image; one line each."""
    from conjure_sandbox.doctor import report

    sys.exit(report(print))


@task(
    auto_shortflags=False,
    iterable=["ref"],
    help={
        "ref": "an image to scan, repo@digest or repo:tag (repeatable; default: the tested ones)",
        "report": "judge a saved grype JSON report instead of scanning",
        "scanner": "the grype executable (default: grype on PATH)",
    },
)
def scan(c: Context, ref: list[str] | None = None, report: str = "", scanner: str = "") -> None:
    """Scan tested images' SBOMs for fixable critical vulnerabilities (allowlist in docker/)."""
    from pathlib import Path

    from conjure_sandbox.config import Settings
    from conjure_sandbox.scan import scan as scan_images

    _user_errors(
        lambda: scan_images(
            Settings.from_env(),
            refs=tuple(ref or ()),
            report=Path(report) if report else None,
            scanner=scanner,
        )
    )
