"""invoke release in throwaway git repositories: bumps, changelog, tag, refusals, no push."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest

from conjure_sandbox.errors import SandboxError
from conjure_sandbox.release import apply, changes, next_version, plan_release

TODAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("current", "bump", "expected"),
    [
        ("1.2.3", "patch", "1.2.4"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "major", "2.0.0"),
        ("1.2.3", "prerelease", "1.2.4-rc.1"),
        ("1.2.4-rc.1", "prerelease", "1.2.4-rc.2"),
        ("1.2.4-rc.2", "patch", "1.2.4"),
        ("1.2.4-rc.2", "minor", "1.3.0"),
        ("0.1.0", "patch", "0.1.1"),
    ],
)
def test_bumps(current: str, bump: str, expected: str) -> None:
    assert next_version(current, bump) == expected


def test_explicit_version_must_be_greater_and_valid() -> None:
    assert next_version("0.1.0", version="0.3.0") == "0.3.0"
    with pytest.raises(SandboxError, match="not greater"):
        next_version("0.1.0", version="0.1.0")
    with pytest.raises(SandboxError, match="starts with 'v'"):
        next_version("0.1.0", version="v0.2.0")
    with pytest.raises(SandboxError, match="exactly one"):
        next_version("0.1.0")
    with pytest.raises(SandboxError, match="unknown bump"):
        next_version("0.1.0", "huge")


def test_unreleased_section_becomes_the_entry_and_a_missing_one_is_templated() -> None:
    pyproject = '[project]\nname = "x"\nversion = "0.1.0"\n'
    kept = "# Changelog\n\n## Unreleased\n\n- a fix\n\n## 0.1.0 - 2026-01-01\n"
    new_py, new_log = changes(pyproject, kept, "0.1.0", "0.1.1", TODAY)
    assert 'version = "0.1.1"' in new_py
    assert "## Unreleased\n\n## 0.1.1 - 2026-11-27\n\n- a fix" in new_log
    _, templated = changes(
        pyproject, "# Changelog\n\n## 0.1.0 - 2026-01-01\n", "0.1.0", "0.2.0", TODAY
    )
    assert templated.index("## 0.2.0 - 2026-11-27") < templated.index("## 0.1.0")
    assert "Describe the changes of 0.2.0" in templated


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0.1.0"\n')
    (root / "CHANGELOG.md").write_text("# Changelog\n\n## Unreleased\n\n- first\n")
    for command in (
        ["init", "--quiet", "--initial-branch=main"],
        ["config", "user.email", "t@example.com"],
        ["config", "user.name", "T"],
        ["add", "."],
        ["commit", "--quiet", "-m", "start"],
    ):
        subprocess.run(["git", *command], cwd=root, check=True)
    return root


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("bump", ["patch", "minor", "major", "prerelease"])
def test_release_commits_and_tags_without_pushing(tmp_path: Path, bump: str) -> None:
    root = _repo(tmp_path)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    _git(root, "remote", "add", "origin", str(remote))
    plan = plan_release(root, "0.1.0", bump=bump, version=None, today=TODAY)
    lines: list[str] = []
    apply(plan, log=lines.append)
    expected = next_version("0.1.0", bump)
    assert f'version = "{expected}"' in (root / "pyproject.toml").read_text()
    assert f"## {expected} - 2026-11-27" in (root / "CHANGELOG.md").read_text()
    assert _git(root, "log", "-1", "--format=%s").strip() == f"Release {expected}"
    assert _git(root, "cat-file", "-t", f"v{expected}").strip() == "tag"  # annotated
    assert _git(root, "status", "--porcelain") == ""
    assert _git(root, "ls-remote", "origin") == ""  # nothing pushed
    assert any(f"git push origin HEAD v{expected}" in line for line in lines)


def test_dry_run_diff_changes_nothing(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    plan = plan_release(root, "0.1.0", bump="minor", version=None, today=TODAY)
    diff = "\n".join(plan.diff())
    assert '-version = "0.1.0"' in diff
    assert '+version = "0.2.0"' in diff
    assert "+## 0.2.0 - 2026-11-27" in diff
    assert _git(root, "status", "--porcelain") == ""
    assert _git(root, "tag") == ""


def test_dirty_tree_and_existing_tag_are_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "stray.txt").write_text("x")
    with pytest.raises(SandboxError, match="uncommitted changes"):
        plan_release(root, "0.1.0", bump="patch", version=None, today=TODAY)
    (root / "stray.txt").unlink()
    _git(root, "tag", "v0.1.1")
    with pytest.raises(SandboxError, match=r"tag v0\.1\.1 already exists"):
        plan_release(root, "0.1.0", bump="patch", version=None, today=TODAY)
