"""``invoke publish`` against real registries: Debian's docker-registry on loopback ports.

The images are built once for amd64 and arm64 and loaded. The records saying
they passed their image tests are written here directly (the image sessions
write them for real: tests/images, ``--image``); each test keeps its own.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from conjure_sandbox.catalogue import load_catalogue
from conjure_sandbox.config import docker_dir
from conjure_sandbox.engine import local_images
from conjure_sandbox.registry import (
    Credentials,
    fetch_manifest,
    list_tags,
    parse_repository,
    tag_digest,
)
from conjure_sandbox.tags import release_tags
from conjure_sandbox.tested import Coverage, TestedImage, record
from conjure_sandbox.version import package_version
from tests.faultproxy import Fault, FaultProxy
from tests.integration.conftest import Registry, index_platforms, raw_manifest, run_invoke
from tests.registrypush import docker_push
from tests.tokenissuer import TokenIssuer

# On a new machine the first test here builds every variant for arm64 under QEMU
# (LibreOffice included): allow well over the default 30 minutes.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(5400)]

CATALOGUE = load_catalogue(docker_dir())
VERSION = package_version()
REPO_PATH = "conjure-test/pub"
BUILT_AS = f"127.0.0.1:5002/{REPO_PATH}"
BOTH = ("linux/amd64", "linux/arm64")
KEEP = "conjure-sandbox-test/publish-keep"
COMPLETE = Coverage(passed=1)
BAD_RECORDS = Path(__file__).parent / "data" / "bad-records"


# Two small variants, each with two floating tags: enough to publish several variants and
# to cut between any two steps. The large ones are built for arm64 natively by ci.yml, not
# under QEMU here (docs/testing.md).
PAIR = ("node", "minimal")


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    """The pair for both platforms, loaded as BUILT_AS:<version>-<variant>: id by variant."""
    result = run_invoke(
        *("build", *(f"--variant={name}" for name in PAIR)),
        *("--platform", BOTH[0], "--platform", BOTH[1], "--load", "--progress", "quiet"),
        env={"CONJURE_BASE": "local", "CONJURE_IMAGE": BUILT_AS},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    refs = {v.name: f"{BUILT_AS}:{VERSION}{v.tag_suffix}" for v in CATALOGUE.select(PAIR)}
    found = local_images(refs.values()) or {}
    for name, ref in refs.items():
        # A second name keeps each image in the store when a test moves the first one.
        subprocess.run(["docker", "tag", ref, f"{KEEP}:{name}"], check=True)
    return {name: found[ref].id for name, ref in refs.items()}


def _as(image: str, variants: Mapping[str, str]) -> None:
    """Give the built images the name a test registry's repository needs."""
    for name in variants:
        suffix = CATALOGUE.get(name).tag_suffix
        subprocess.run(
            ["docker", "tag", f"{KEEP}:{name}", f"{image}:{VERSION}{suffix}"], check=True
        )


def _staged(host: str, directory: Path, ids: Mapping[str, str]) -> str:
    """The test repository on ``host``, its version tags named in the engine for the images of
    ``ids`` (variant -> id), each recorded as tested."""
    image = f"{host}/{REPO_PATH}"
    _as(image, ids)
    _tested(directory, image, ids)
    return image


def _tested(directory: Path, image: str, ids: Mapping[str, str]) -> None:
    for name, image_id in ids.items():
        for platform in BOTH:
            ref = f"{image}:{VERSION}{CATALOGUE.get(name).tag_suffix}"
            # Stands in for a complete image-suite run (test_tested_records covers the real one).
            record(directory, TestedImage(name, platform, ref, image_id, VERSION, COMPLETE))


def _publish(
    image: str, tested_dir: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_invoke(
        "publish",
        *args,
        env={"CONJURE_IMAGE": image, "CONJURE_TESTED_DIR": str(tested_dir), **(env or {})},
    )


def _snapshot(image: str, credentials: Credentials | None = None) -> dict[str, str | None]:
    repository = parse_repository(image)
    return {t: tag_digest(repository, t, credentials) for t in list_tags(repository, credentials)}


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    # A retried 5xx of the real registry (its read-during-write race) adds a warning line.
    lines = [
        line for line in result.stderr.strip().splitlines() if not line.startswith("warning: ")
    ]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "(fix: " in lines[0]
    return lines[0]


@pytest.mark.registry
def test_publish_two_variants_then_refuse_a_changed_image(
    built: dict[str, str], make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    make_registry(5002)
    _tested(tmp_path / "tested", BUILT_AS, built)
    result = _publish(BUILT_AS, tmp_path / "tested", *(f"--variant={name}" for name in PAIR))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    holding = _snapshot(BUILT_AS)
    published = 0
    for variant in CATALOGUE.select(PAIR):
        for tag in release_tags(VERSION, variant).all:
            assert holding[tag] == built[variant.name], tag
            assert index_platforms(f"{BUILT_AS}:{tag}") == set(BOTH), tag
            published += 1
    assert published == len(holding)  # every tag of the pair, nothing else
    assert not any(tag.split("-")[0] == "0" for tag in holding)  # no bare 0 tag

    # The same version again, with different content: refused, registry unchanged.
    rebuilt = run_invoke(
        *("build", "--variant", "minimal", "--platform", BOTH[0], "--platform", BOTH[1]),
        *("--load", "--tag", f"{BUILT_AS}:{VERSION}"),
        env={"CONJURE_BASE": "local", "SOURCE_DATE_EPOCH": "1"},
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    changed = (local_images([f"{BUILT_AS}:{VERSION}-minimal"]) or {})[
        f"{BUILT_AS}:{VERSION}-minimal"
    ]
    assert changed.id != built["minimal"]
    _tested(tmp_path / "tested", BUILT_AS, {"minimal": changed.id})
    refused = _publish(BUILT_AS, tmp_path / "tested", "--variant", "minimal")
    assert "release tags are immutable" in _one_line_error(refused)
    assert _snapshot(BUILT_AS) == holding
    _as(BUILT_AS, {"minimal": built["minimal"]})


MOVES = [t for v in CATALOGUE.select(PAIR) for t in release_tags(VERSION, v).floating]


def _tag(tag: str) -> str:
    return rf"/manifests/{re.escape(tag)}$"


FAULTS = {
    # killed during the first blob upload: nothing tagged yet
    "first-blob": Fault("PUT", r"/blobs/uploads/", 1, "drop", down=True),
    # killed once the platform manifest landed under the version tag: a lone manifest
    "lone-manifest": Fault("PUT", _tag(f"{VERSION}-minimal"), 1, "drop-after", down=True),
    # the index landed, its reply was lost: the rerun finds it already there. docker push
    # puts the index under the tag after its four children (two platforms' images and
    # their attestations), each of those under the tag too.
    "index-reply-lost": Fault("PUT", _tag(f"{VERSION}-minimal"), 5, "drop-after", down=True),
    # killed at the first floating move, then between two variants' floating moves
    "first-move": Fault("PUT", _tag(MOVES[0]), 1, "drop", down=True),
    "third-move": Fault("PUT", _tag(MOVES[2]), 1, "drop", down=True),
    # one 5xx, as Debian's registry gives now and then: retried, the publish completes
    "one-500-on-head": Fault("HEAD", _tag(f"{VERSION}-minimal"), 1, "500"),
    "one-500-on-blob": Fault("PUT", r"/blobs/uploads/", 2, "500"),
}
CUT_AT_MOVE = {"first-move": 0, "third-move": 2}


@pytest.mark.registry
@pytest.mark.parametrize("point", list(FAULTS))
def test_a_publish_cut_at_each_point_moves_no_floating_tag_early_and_a_rerun_completes(
    point: str, built: dict[str, str], make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    registry = make_registry(5011)
    proxy = FaultProxy(5111, registry.host, FAULTS[point])
    try:
        image = _staged(proxy.host, tmp_path / "tested", {name: built[name] for name in PAIR})
        args = ["--variant", PAIR[0], "--variant", PAIR[1]]
        first = _publish(image, tmp_path / "tested", *args)
        assert proxy.fired, f"the fault point {point} was never reached"
        repository = parse_repository(f"{registry.host}/{REPO_PATH}")
        if not FAULTS[point].down:
            assert first.returncode == 0, first.stdout[-3000:] + first.stderr
            assert "retry 1 of 2" in first.stderr
        else:
            error = _one_line_error(first)
            moved = MOVES[: CUT_AT_MOVE.get(point, 0)]
            if point in CUT_AT_MOVE:
                assert f"floating tags moved: {', '.join(moved) or 'none'}; " in error
                assert f"not moved: {', '.join(MOVES[len(moved) :])}" in error
            else:
                assert "floating tags were not moved" in error
            assert set(list_tags(repository)) & set(MOVES) == set(moved)
            left = fetch_manifest(repository, f"{VERSION}-minimal")
            if point == "lone-manifest":
                assert left is not None
                assert left.entries is None, left
            if point == "index-reply-lost":
                assert left is not None
                assert left.digest == built["minimal"]
            proxy.heal()
            rerun = _publish(image, tmp_path / "tested", *args)
            assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr
            if point == "index-reply-lost":
                assert f"already there  {image}:{VERSION}-minimal\n" in rerun.stdout
        holding = _snapshot(f"{registry.host}/{REPO_PATH}")
        for name in PAIR:
            for tag in release_tags(VERSION, CATALOGUE.get(name)).all:
                assert holding[tag] == built[name], tag
    finally:
        proxy.close()


def _unservable(registry: Registry, tag: str) -> None:
    """Empty the tag's link in the registry's storage, as a kill mid-write leaves it."""
    tags = registry.root / "data/docker/registry/v2/repositories" / REPO_PATH / "_manifests/tags"
    (tags / tag / "current" / "link").write_text("")


@pytest.mark.registry
def test_a_tag_the_registry_cannot_serve_is_repaired_by_the_rerun(
    built: dict[str, str], make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    """A registry killed while writing a tag link leaves it empty: every read of the tag is a 500.

    docker push and imagetools both read the tag first and stop there; the
    rerun uploads the image by digest and writes the tag without reading it.
    """
    registry = make_registry(5012)
    image = _staged(registry.host, tmp_path / "tested", {"minimal": built["minimal"]})
    docker_push(f"{image}:{VERSION}-minimal")
    _unservable(registry, f"{VERSION}-minimal")
    blocked = subprocess.run(
        ["docker", "push", "--quiet", f"{image}:{VERSION}-minimal"], capture_output=True, text=True
    )
    assert "500 Internal Server Error" in blocked.stderr

    result = _publish(image, tmp_path / "tested", "--variant", "minimal")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert f"repair         {image}:{VERSION}-minimal" in result.stdout
    holding = _snapshot(image)
    for tag in release_tags(VERSION, CATALOGUE.get("minimal")).all:
        assert holding[tag] == built["minimal"], tag
    assert index_platforms(f"{image}:{VERSION}-minimal") == set(BOTH)


@pytest.mark.registry
def test_credentials_wrong_then_right_and_the_password_never_shows(
    built: dict[str, str], make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    password = "pw-7f3a-never-print-me"
    registry = make_registry(5004, users={"maint": password})
    image = _staged(registry.host, tmp_path / "tested", {"minimal": built["minimal"]})
    docker_config = Path.home() / ".docker" / "config.json"
    before = docker_config.read_text() if docker_config.exists() else ""

    wrong = _publish(
        image,
        tmp_path / "tested",
        *("--variant", "minimal"),
        env={"CONJURE_REGISTRY_USER": "maint", "CONJURE_REGISTRY_PASSWORD": "wrong-password"},
    )
    assert "HTTP 401" in _one_line_error(wrong)
    assert not (registry.root / "data" / "docker" / "registry" / "v2" / "repositories").exists()

    digests = tmp_path / "published.txt"
    right = run_invoke(
        *("publish", "--variant", "minimal", "--password-stdin", "--digest-file", str(digests)),
        env={
            "CONJURE_IMAGE": image,
            "CONJURE_TESTED_DIR": str(tmp_path / "tested"),
            "CONJURE_REGISTRY_USER": "maint",
        },
        stdin=password + "\n",
    )
    assert right.returncode == 0, right.stdout[-3000:] + right.stderr
    credentials = Credentials("maint", password, parse_repository(image).host)
    assert _snapshot(image, credentials)[f"{VERSION}-minimal"] == built["minimal"]
    # What CI signs: the verified index, then each entry in it, by name.
    index = fetch_manifest(parse_repository(image), built["minimal"], credentials)
    assert index is not None
    assert index.entries
    expected = "".join(f"{image}@{d}\n" for d in (built["minimal"], *index.entries))
    assert digests.read_text() == expected
    # One line about the temporary credentials, none of docker login's chatter.
    assert right.stdout.count("through a temporary client config") == 1
    for chatter in ("unencrypted", "Login Succeeded", "WARNING"):
        assert chatter not in right.stdout + right.stderr
    history = subprocess.run(
        ["docker", "history", "--no-trunc", f"{image}:{VERSION}-minimal"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    registry_log = (registry.root / "registry.log").read_text()
    for text in (wrong.stdout, wrong.stderr, right.stdout, right.stderr, history, registry_log):
        assert password not in text
    # The login lived in a temporary client config: the user's own is untouched.
    assert (docker_config.read_text() if docker_config.exists() else "") == before


@pytest.mark.registry
def test_a_version_lower_than_the_latest_release_is_refused(
    built: dict[str, str], make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    registry = make_registry(5005)
    image = _staged(registry.host, tmp_path / "tested", {"minimal": built["minimal"]})
    newer = f"{image}:9.9.9-minimal"
    subprocess.run(["docker", "tag", f"{image}:{VERSION}-minimal", newer], check=True)
    docker_push(newer)
    result = _publish(image, tmp_path / "tested", "--variant", "minimal")
    assert "lower than minimal's latest release 9.9.9" in _one_line_error(result)
    assert list_tags(parse_repository(image)) == ["9.9.9-minimal"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("build", "--variant", "minimal", "--version", "1.2"), {}, "not a semver version"),
        (("build", "--variant", "minimal", "--version", "01.2.3"), {}, "not a semver version"),
        (("build", "--variant", "minimal", "--version", "v1.2.3"), {}, "starts with 'v'"),
        (("build", "--variant", "minimal", "--version", "1.2.3+b"), {}, "build metadata"),
        (("build", "--variant", "minimal", "--platform", "linux/sparc"), {}, "linux/sparc"),
        (
            ("build", "--variant", "minimal", "--platform", "linux/amd65"),
            {},
            "not a valid platform",
        ),
        (("build", "--variant", "minimal", "--platform", "arm64"), {}, "an architecture, not"),
        (("build", "--variant", "minimal", "--platform", "windows/amd64"), {}, "Linux images"),
        (("build", "--variant", "minimal", "--jobs", "-1"), {}, "cannot be negative"),
        (("build", "--variant", "minimal", "--jobs", "abc"), {}, "'abc' is not a number"),
        (("build", "--variant", "minimal", "--version", ""), {}, "not a semver version"),
        (("build", "--variant", "minimal"), {"CONJURE_CACHE": "%%garbage%%"}, "CONJURE_CACHE"),
        (("publish",), {"DOCKER_HOST": "unix:///nonexistent.sock"}, "no Docker engine answers"),
        (("publish", "--variant", "gpu"), {}, "unknown variant 'gpu'"),
        (("publish",), {"CONJURE_IMAGE": "Not/A Ref"}, "not an image repository"),
        (
            ("publish", "--digest-file", "/nonexistent/out/digests.txt"),
            {},
            "/nonexistent/out does not exist; nothing was pushed",
        ),
        (("publish",), {"CONJURE_TESTED_DIR": str(BAD_RECORDS)}, "bad.json is unreadable"),
    ],
)
def test_bad_inputs_are_one_line_errors_and_push_nothing(
    args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run_invoke(*args, "--dry-run", env={"CONJURE_BASE": "local", **env})
    assert message in _one_line_error(result)


@pytest.mark.registry
def test_a_lone_manifest_of_other_content_under_a_version_tag_is_refused(
    built: dict[str, str], make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    """Only the tested image's own platform manifest is taken for an interrupted push of ours."""
    registry = make_registry(5013)
    image = _staged(registry.host, tmp_path / "tested", {"minimal": built["minimal"]})
    _as(image, {"node": built["node"]})
    docker_push(f"{image}:{VERSION}-node")
    node_amd64 = next(
        m["digest"]
        for m in raw_manifest(f"{image}:{VERSION}-node")["manifests"]
        if m["platform"]["architecture"] == "amd64"
    )
    # What an interrupted push of node would leave: its amd64 manifest alone under a tag.
    base = f"http://{registry.host}/v2/{REPO_PATH}/manifests"
    oci = "application/vnd.oci.image.manifest.v1+json"
    request = urllib.request.Request(f"{base}/{node_amd64}", headers={"Accept": oci})
    with urllib.request.urlopen(request) as response:
        body = response.read()
    put = urllib.request.Request(
        f"{base}/{VERSION}-minimal", data=body, method="PUT", headers={"Content-Type": oci}
    )
    urllib.request.urlopen(put).close()
    before = _snapshot(image)
    assert before[f"{VERSION}-minimal"] == node_amd64

    refused = _publish(image, tmp_path / "tested", "--variant", "minimal")
    assert "release tags are immutable" in _one_line_error(refused)
    assert _snapshot(image) == before


@pytest.mark.registry
def test_publish_to_a_token_auth_registry_as_ghcr_works(
    built: dict[str, str], make_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    """Bearer tokens earned per scope (pull, then push), handed out as access_token."""
    passwords = {"maint": "tok-pw-maint", "reader": "tok-pw-reader"}
    issuer = TokenIssuer(5031, passwords, {"maint"}, tmp_path)
    try:
        registry = make_registry(5030, auth=issuer.registry_auth())
        image = _staged(registry.host, tmp_path / "tested", {"minimal": built["minimal"]})
        args = ("--variant", "minimal")

        def as_user(user: str) -> subprocess.CompletedProcess[str]:
            env = {"CONJURE_REGISTRY_USER": user, "CONJURE_REGISTRY_PASSWORD": passwords[user]}
            return _publish(image, tmp_path / "tested", *args, env=env)

        anonymous = _publish(image, tmp_path / "tested", *args)
        assert "HTTP 401" in _one_line_error(anonymous)
        reader = as_user("reader")  # may pull, may not push: nothing lands
        assert "pushing" in _one_line_error(reader)
        maint = as_user("maint")
        assert maint.returncode == 0, maint.stdout[-3000:] + maint.stderr
        assert f"maint:{REPO_PATH}:pull,push" in issuer.scopes_granted

        credentials = Credentials("maint", passwords["maint"], parse_repository(image).host)
        holding = _snapshot(image, credentials)
        for tag in release_tags(VERSION, CATALOGUE.get("minimal")).all:
            assert holding[tag] == built["minimal"], tag
        # One tag a page: the list follows the registry's Link header to the end.
        repository = parse_repository(image)
        assert sorted(list_tags(repository, credentials, page=1)) == sorted(holding)

        # The repair path uploads through the registry API itself: a pull token from its
        # first HEAD, then a push token when the upload asks for one.
        _unservable(registry, f"{VERSION}-minimal")
        repaired = as_user("maint")
        assert repaired.returncode == 0, repaired.stdout[-3000:] + repaired.stderr
        assert f"repair         {image}:{VERSION}-minimal" in repaired.stdout
        assert _snapshot(image, credentials) == holding
    finally:
        issuer.close()
