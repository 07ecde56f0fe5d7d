"""``invoke release``: the next version into pyproject.toml and the changelog, a commit, a tag.

It reads the state first (version, tree, tags), decides every change, and only
then writes; it never pushes, and prints the commands that do. ``next_version``
and ``changes`` are pure.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import semver

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.tags import git_tag, parse_version

BUMPS = ("patch", "minor", "major", "prerelease")
CHANGELOG = "CHANGELOG.md"
_VERSION_LINE = re.compile(r'^version = "([^"]+)"$', re.MULTILINE)
_UNRELEASED = re.compile(r"^## Unreleased[ \t]*$", re.MULTILINE)


def next_version(current: str, bump: str | None = None, version: str | None = None) -> str:
    """The release after ``current``: a bump kind or an explicit version, always greater.

    A prerelease bump of a final release starts the next patch's candidates
    (1.2.3 -> 1.2.4-rc.1, since 1.2.3-rc.1 would sort below 1.2.3).
    """
    now = parse_version(current)
    if (bump is None) == (version is None):
        raise SandboxError("give exactly one of --bump and --version", f"--bump {'|'.join(BUMPS)}")
    if version is not None:
        new = parse_version(version)
    elif bump == "prerelease":
        base = now if now.prerelease else now.bump_patch()
        new = base.bump_prerelease("rc") if base.prerelease else base.replace(prerelease="rc.1")
    elif bump in ("patch", "minor", "major"):
        new = semver.Version.parse(str(now.finalize_version()))
        if not now.prerelease or bump != "patch":
            new = getattr(now, f"bump_{bump}")()
    else:
        raise SandboxError(f"unknown bump {bump!r}", f"use one of {', '.join(BUMPS)}")
    if new <= now:
        raise SandboxError(
            f"{new} is not greater than the current version {now}", "choose a higher version"
        )
    return str(new)


def has_entry(changelog: str, version: str) -> bool:
    """Whether CHANGELOG.md's text has a ``## <version>`` section."""
    return f"## {version} " in changelog or changelog.rstrip().endswith(f"## {version}")


def changes(pyproject: str, changelog: str, old: str, new: str, today: date) -> tuple[str, str]:
    """pyproject.toml and CHANGELOG.md after the release of ``new``.

    An ``## Unreleased`` section becomes the release's entry; without one, an
    entry is created from a template for the maintainer to fill in.
    """
    found = _VERSION_LINE.search(pyproject)
    if not found or found.group(1) != old:
        raise SandboxError(
            f'pyproject.toml has no line version = "{old}"', "fix the [project] version line"
        )
    pyproject = pyproject[: found.start(1)] + new + pyproject[found.end(1) :]
    heading = f"## {new} - {today.isoformat()}"
    if has_entry(changelog, new):
        raise SandboxError(
            f"{CHANGELOG} already has an entry for {new}", "remove it or pick another version"
        )
    if _UNRELEASED.search(changelog):
        changelog = _UNRELEASED.sub(f"## Unreleased\n\n{heading}", changelog, count=1)
    else:
        entry = f"{heading}\n\n- Describe the changes of {new} here.\n\n"
        title, _, rest = changelog.partition("\n## ")
        changelog = f"{title.rstrip()}\n\n{entry}" + (f"## {rest}" if rest else "")
    return pyproject, changelog


@dataclass(frozen=True)
class ReleasePlan:
    root: Path
    old: str
    new: str
    files: dict[str, tuple[str, str]]  # name -> (before, after)

    @property
    def tag(self) -> str:
        return git_tag(self.new)

    def diff(self) -> list[str]:
        lines: list[str] = []
        for name, (before, after) in self.files.items():
            lines += difflib.unified_diff(
                before.splitlines(), after.splitlines(), f"a/{name}", f"b/{name}", lineterm=""
            )
        return lines


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SandboxError(
            f"git {' '.join(args)} failed: {out.stderr.strip()}", "check the repository"
        )
    return out.stdout


def plan_release(
    root: Path, current: str, *, bump: str | None, version: str | None, today: date
) -> ReleasePlan:
    """Read the repository and decide the release, refusing a dirty tree or an existing tag."""
    new = next_version(current, bump, version)
    dirty = _git(root, "status", "--porcelain").strip()
    if dirty:
        raise SandboxError(
            f"the working tree has uncommitted changes ({dirty.splitlines()[0].strip()} ...)",
            "commit or stash them first",
        )
    if _git(root, "tag", "--list", git_tag(new)).strip():
        raise SandboxError(f"tag {git_tag(new)} already exists", "choose another version")
    pyproject = (root / "pyproject.toml").read_text()
    log_path = root / CHANGELOG
    changelog = log_path.read_text() if log_path.exists() else "# Changelog\n"
    new_pyproject, new_changelog = changes(pyproject, changelog, current, new, today)
    files = {
        "pyproject.toml": (pyproject, new_pyproject),
        CHANGELOG: (changelog if log_path.exists() else "", new_changelog),
    }
    return ReleasePlan(root, current, new, files)


def apply(plan: ReleasePlan, log: Callable[[str], None] = print) -> None:
    """Write the files, commit them and create the annotated tag; push nothing."""
    for name, (_, after) in plan.files.items():
        (plan.root / name).write_text(after)
    _git(plan.root, "add", *plan.files)
    _git(plan.root, "commit", "--quiet", "-m", f"Release {plan.new}")
    _git(plan.root, "tag", "--annotate", plan.tag, "-m", f"conjure-sandbox {plan.new}")
    log(f"committed 'Release {plan.new}' and tagged {plan.tag}; nothing was pushed. Next:")
    log(f"  git push origin HEAD {plan.tag}   # CI builds, tests and publishes the images")
    log(
        "  or locally: invoke build --all --platform linux/amd64 --platform linux/arm64, "
        "nox -s test_images test_images_arm64 -- --image <image>, invoke publish"
    )
