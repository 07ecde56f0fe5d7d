"""``nox -s check_version``: one version everywhere before anything is published.

The package version (pyproject.toml) must equal the git tag on HEAD when
there is one (``vX.Y.Z``), the version label of every built image, the
installed package's own metadata (what ``ensure_image()`` pulls when the
library runs from a wheel) and a CHANGELOG.md entry; it must be valid semver
and newer than every published release of each variant. Each row reads its
value from a source of its own. ``check`` is pure and returns the table;
``gather`` reads the facts.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from conjure_sandbox.catalogue import Catalogue, load_catalogue
from conjure_sandbox.config import SOURCE_ROOT, Settings, docker_dir
from conjure_sandbox.engine import local_images
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.plan import VERSION_LABEL
from conjure_sandbox.registry import Credentials
from conjure_sandbox.release import CHANGELOG, has_entry
from conjure_sandbox.tags import check_newer, parse_version, releases, version_tag
from conjure_sandbox.version import package_version


@dataclass(frozen=True)
class Facts:
    version: str
    git_tags: tuple[str, ...] | None  # v* tags on HEAD; None: the root is no git checkout
    image: str
    labels: Mapping[str, str | None]  # variant -> version label of its built image, None: not built
    published: tuple[str, ...]
    installed: str = ""  # the installed distribution's version, "" when not installed
    changelog_entry: bool = True  # CHANGELOG.md has a "## <version>" section


@dataclass(frozen=True)
class Row:
    source: str
    value: str
    ok: bool
    fix: str = ""


def check(catalogue: Catalogue, facts: Facts, *, maintenance: bool = False) -> list[Row]:
    """Every place the version appears, each compared with the package version.

    ``maintenance`` admits a patch on an older X.Y line (see ``check_newer``).
    """
    want = facts.version
    rows = []
    try:
        parse_version(want)
        rows.append(Row("package version (pyproject.toml)", want, True))
    except SandboxError as error:
        return [Row("package version (pyproject.toml)", want, False, error.fix or "")]
    for variant in catalogue:
        source = f"newer than published {variant.name} releases"
        try:
            check_newer(want, facts.published, variant, maintenance=maintenance)
            newest = max(releases(facts.published, variant), default=None)
            rows.append(Row(source, f"latest {newest or '(none)'}", True))
        except SandboxError as error:
            rows.append(Row(source, error.problem, False, error.fix or ""))
    if facts.git_tags is None:
        rows.append(
            Row(
                "git tag on HEAD",
                "(not a git checkout)",
                False,
                "run from the project's git checkout, where pyproject.toml is",
            )
        )
    elif facts.git_tags:
        tagged = [t for t in facts.git_tags if t == f"v{want}"]
        rows.append(
            Row(
                "git tag on HEAD",
                ", ".join(facts.git_tags),
                bool(tagged),
                _tag_fix(facts.git_tags, want),
            )
        )
    else:
        rows.append(Row("git tag on HEAD", "(none)", True))
    installed = facts.installed or "(not installed)"
    rows.append(
        Row(
            "installed package (what ensure_image() pulls from a wheel)",
            installed,
            facts.installed in ("", want),
            "pip install -e . (the installed metadata is stale)",
        )
    )
    rows.append(
        Row(
            "CHANGELOG.md entry",
            f"## {want}" if facts.changelog_entry else "(none)",
            facts.changelog_entry,
            "invoke release --bump ... (it dates the Unreleased section as this version)",
        )
    )
    for variant in catalogue:
        label = facts.labels.get(variant.name)
        value = "(not built; checked again at publish)" if label is None else label
        rows.append(
            Row(
                f"label in {variant.name} image",
                value,
                label in (None, want),
                "" if label in (None, want) else f"invoke build --variant {variant.name}",
            )
        )
    return rows


def _tag_fix(tags: tuple[str, ...], want: str) -> str:
    """What to do when HEAD's release tag is not ``v`` + the package version."""
    tag = tags[0]
    if tag[:1] == "v":
        return f"set the version to {tag[1:]} or tag v{want}"
    return f"release tags are v + the version: tag v{want}, not {tag}"


def table(rows: Sequence[Row]) -> list[str]:
    width = max(len(r.source) for r in rows)
    lines = []
    for r in rows:
        mark = "ok" if r.ok else "MISMATCH"
        fix = f"  (fix: {r.fix})" if r.fix and not r.ok else ""
        lines.append(f"{r.source:<{width}}  {mark:<8}  {r.value}{fix}")
    return lines


def git_version_tags(root: Path) -> tuple[str, ...] | None:
    """The v* tags on HEAD of the checkout whose top is ``root``; None when ``root`` is not
    the top of one (a folder inside another repository would report that one's tags)."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)

    top = git("rev-parse", "--show-toplevel")
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
        return None
    out = git("tag", "--points-at", "HEAD", "--list", "v*")
    return tuple(sorted(out.stdout.split())) if out.returncode == 0 else None


def _installed_version() -> str:
    """The installed distribution's own metadata, read independently of pyproject.toml."""
    from importlib import metadata

    from conjure_sandbox.version import DISTRIBUTION

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return ""


def gather(
    catalogue: Catalogue,
    settings: Settings,
    root: Path,
    version: str,
    credentials: Credentials | None = None,
    images: bool = True,
) -> Facts:
    """Read the facts: git, the engine's images, the registry's tags, ensure_image's refs."""
    from conjure_sandbox.registry import list_tags, parse_repository

    refs = {v.name: version_tag(settings.image, str(version), v) for v in catalogue}
    changelog = root / CHANGELOG
    found = (local_images(refs.values()) or {}) if images else {}
    labels = {
        name: found[ref].labels.get(VERSION_LABEL, "") if ref in found else None
        for name, ref in refs.items()
    }
    return Facts(
        version=version,
        git_tags=git_version_tags(root),
        image=settings.image,
        labels=labels,
        published=tuple(list_tags(parse_repository(settings.image), credentials)),
        installed=_installed_version(),
        changelog_entry=changelog.is_file() and has_entry(changelog.read_text(), version),
    )


def run(
    settings: Settings,
    log: Callable[[str], None] = print,
    credentials: Credentials | None = None,
    images: bool = True,
    release_tag: str = "",
    maintenance: bool = False,
) -> Facts:
    """Print the table; raise one SandboxError naming every mismatch, else return the facts.

    ``images`` false skips the local images' labels (CI checks before building);
    ``release_tag`` is the tag a release event names (CI), checked like a tag on HEAD.
    """
    catalogue = load_catalogue(docker_dir())
    # The version's own checkout (pyproject.toml), not the catalogue's folder, which
    # CONJURE_DOCKER_DIR may put anywhere.
    root = SOURCE_ROOT
    facts = gather(catalogue, settings, root, package_version(), credentials, images)
    if release_tag and facts.git_tags is not None:
        facts = replace(facts, git_tags=tuple(sorted({*facts.git_tags, release_tag})))
    rows = check(catalogue, facts, maintenance=maintenance)
    for line in table(rows):
        log(line)
    bad = [r for r in rows if not r.ok]
    if bad:
        raise SandboxError(
            "version mismatch: " + "; ".join(f"{r.source}: {r.value}" for r in bad),
            bad[0].fix or "see the table above",
        )
    return facts
