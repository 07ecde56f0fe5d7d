"""The variant catalogue: docker/variants.toml read into frozen dataclasses.

Nothing else in the project defines a variant; a fifth variant is one more
``[[variant]]`` entry and its Dockerfile.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conjure_sandbox.errors import SandboxError

CATALOGUE_FILE = "variants.toml"


def platforms_slug(platforms: tuple[str, ...]) -> str:
    """``linux/amd64`` as ``linux-amd64``, several joined by ``+``: for paths, tags and jobs."""
    return "+".join(p.replace("/", "-") for p in platforms)


def job_slug(variant: str, platforms: tuple[str, ...]) -> str:
    """``minimal-linux-arm64``: a CI job's name and the digest file ``--digest-dir`` gets."""
    return f"{variant}-{platforms_slug(platforms)}"


@dataclass(frozen=True)
class Expectations:
    """What a variant's image tests check beyond the shared executor contract."""

    commands: tuple[str, ...] = ()
    absent_commands: tuple[str, ...] = ()
    python_modules: tuple[str, ...] = ()
    absent_python_modules: tuple[str, ...] = ()
    node_modules: tuple[str, ...] = ()
    absent_node_modules: tuple[str, ...] = ()
    fonts: tuple[str, ...] = ()
    absent_fonts: tuple[str, ...] = ()
    size_budget_mb: float | None = None

    def has(
        self,
        *,
        commands: tuple[str, ...] = (),
        modules: tuple[str, ...] = (),
        node_modules: tuple[str, ...] = (),
        fonts: tuple[str, ...] = (),
    ) -> bool:
        """Whether the variant promises every one of these commands, modules and font families."""
        return (
            set(commands) <= set(self.commands)
            and set(modules) <= set(self.python_modules)
            and set(node_modules) <= set(self.node_modules)
            and set(fonts) <= set(self.fonts)
        )


@dataclass(frozen=True)
class Variant:
    """One image variant: how it is built and what its tests expect."""

    name: str
    dockerfile: Path
    tag_suffix: str
    platforms: tuple[str, ...]
    description: str
    expect: Expectations
    default: bool = False


@dataclass(frozen=True)
class Catalogue:
    """Every variant, in declaration order, and the folder their Dockerfiles live in."""

    docker_dir: Path
    variants: tuple[Variant, ...]

    def __iter__(self) -> Iterator[Variant]:
        return iter(self.variants)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    @property
    def default(self) -> Variant:
        return next(v for v in self.variants if v.default)

    def get(self, name: str | None) -> Variant:
        """The variant called ``name`` (None: the default variant); an unknown name lists
        the valid ones."""
        if name is None:
            return self.default
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise SandboxError(
            f"unknown variant {name!r}",
            f"use one of: {', '.join(self.names)}",
        )

    def select(self, names: list[str] | tuple[str, ...]) -> tuple[Variant, ...]:
        """The named variants in catalogue order, without repeats; none named means all."""
        if not names:
            return self.variants
        wanted = {self.get(n).name for n in names}
        return tuple(v for v in self.variants if v.name in wanted)


# Each string in variants.toml reaches a file path, an image reference, a CI job
# name or a command line: each must match its pattern, checked before use.
NAME = re.compile(r"\A[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
# A variant's name is its floating tag and part of CI job names: short, and never one
# of the tags other releases and builds take (latest, edge, sha-<commit>).
NAME_MAX = 32
RESERVED_NAMES = ("latest", "edge")
RESERVED_PREFIX = "sha-"
DESCRIPTION_MAX = 200
# Above this, a size budget is a typo (the full image is under 2 GB).
BUDGET_MAX_MB = 100_000
# Empty (the default variant) or "-word[-word...]": never a dot, so a suffixed tag
# never reads as another release's version (0.1.0-rc.1).
TAG_SUFFIX = re.compile(r"\A(?:-[a-z][a-z0-9]*(?:-[a-z0-9]+)*)?\Z")
# A file directly in docker/: no directory part, nothing that climbs out of it.
DOCKERFILE = re.compile(r"\ADockerfile(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)?\Z")
PLATFORM = re.compile(r"\Alinux/(?:amd64|arm64|arm/v[67]|ppc64le|s390x|riscv64|386)\Z")
_EXPECT_ITEMS = {
    "commands": re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._+-]*\Z"),
    "absent_commands": re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._+-]*\Z"),
    "python_modules": re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z"),
    "absent_python_modules": re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z"),
    "node_modules": re.compile(r"\A(?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*\Z"),
    "absent_node_modules": re.compile(r"\A(?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*\Z"),
    "fonts": re.compile(r"\A[A-Za-z0-9][A-Za-z0-9 ._-]*\Z"),
    "absent_fonts": re.compile(r"\A[A-Za-z0-9][A-Za-z0-9 ._-]*\Z"),
}
_VARIANT_KEYS = {
    "name",
    "dockerfile",
    "tag_suffix",
    "platforms",
    "description",
    "expect",
    "default",
}
_EXPECT_KEYS = {*_EXPECT_ITEMS, "size_budget_mb"}


def _invalid(where: str, field: str, value: object, rule: str) -> SandboxError:
    return SandboxError(f"{where}: {field} = {value!r} is not valid", f"use {rule}")


def _string(
    entry: Mapping[str, Any],
    key: str,
    where: str,
    pattern: re.Pattern[str] | None,
    rule: str,
    default: str | None = None,
) -> str:
    """``entry[key]`` as a string matching ``pattern``; missing, mistyped or odd is one line."""
    if key not in entry:
        if default is not None:
            return default
        raise SandboxError(f"{where}: missing {key!r}", f"add {key} = ... to the entry")
    value = entry[key]
    valid = isinstance(value, str) and (
        pattern.match(value)
        if pattern
        else value.strip() and value.isprintable() and len(value) <= DESCRIPTION_MAX
    )
    if not valid:
        raise _invalid(where, key, value, rule)
    return str(value)


def _strings(
    value: object, where: str, field: str, pattern: re.Pattern[str], rule: str
) -> tuple[str, ...]:
    """A list of strings, each matching ``pattern``."""
    if not isinstance(value, list):
        raise _invalid(where, field, value, f"a list of {rule}")
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            raise _invalid(where, f"{field} item", item, rule)
    return tuple(value)


def _unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise SandboxError(
            f"{where}: unknown key {extra[0]!r}", f"use only: {', '.join(sorted(known))}"
        )


def _expectations(expect: object, where: str) -> Expectations:
    if not isinstance(expect, dict):
        raise _invalid(where, "expect", expect, "a [variant.expect] table")
    _unknown(expect, _EXPECT_KEYS, f"{where} expect")
    lists = {
        key: _strings(expect.get(key, []), f"{where} expect", key, pattern, "plain names")
        for key, pattern in _EXPECT_ITEMS.items()
    }
    budget = expect.get("size_budget_mb")
    if budget is not None and (
        isinstance(budget, bool)
        or not isinstance(budget, int | float)
        or not math.isfinite(budget)
        or not 0 < budget <= BUDGET_MAX_MB
    ):
        raise _invalid(where, "size_budget_mb", budget, f"a number of MB from 0 to {BUDGET_MAX_MB}")
    return Expectations(**lists, size_budget_mb=budget)


def _platforms(value: object, where: str) -> tuple[str, ...]:
    platforms = _strings(value, where, "platforms", PLATFORM, "linux/amd64, linux/arm64, ...")
    if not platforms:
        raise SandboxError(
            f"{where}: no platforms", "set [defaults] platforms or platforms = [...]"
        )
    if len(set(platforms)) != len(platforms):
        raise _invalid(where, "platforms", list(platforms), "each platform once")
    return platforms


def _variant(
    entry: object, index: int, docker_dir: Path, source: str, default_platforms: object
) -> Variant:
    where = f"{source} variant #{index + 1}"
    if not isinstance(entry, dict):
        raise _invalid(where, "[[variant]]", entry, "a [[variant]] table")
    name = _string(entry, "name", where, NAME, "lower-case letters, digits and single dashes")
    if len(name) > NAME_MAX or name in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
        raise _invalid(
            where,
            "name",
            name[:NAME_MAX] + ("..." if len(name) > NAME_MAX else ""),
            f"at most {NAME_MAX} characters, not latest, edge or sha-... (other tags)",
        )
    where = f"{source} variant {name!r}"
    _unknown(entry, _VARIANT_KEYS, where)
    default = entry.get("default", False)
    if not isinstance(default, bool):
        raise _invalid(where, "default", default, "true or false")
    dockerfile = _string(
        entry, "dockerfile", where, DOCKERFILE, "a file name in docker/: Dockerfile[.name]"
    )
    return Variant(
        name=name,
        dockerfile=docker_dir / dockerfile,
        tag_suffix=_string(
            entry,
            "tag_suffix",
            where,
            TAG_SUFFIX,
            '"" or "-name" (letters, digits, dashes)',
            default=f"-{name}",
        ),
        platforms=_platforms(entry.get("platforms", default_platforms), where),
        description=_string(entry, "description", where, None, "a sentence"),
        expect=_expectations(entry.get("expect", {}), where),
        default=default,
    )


def parse_catalogue(data: dict[str, Any], docker_dir: Path, source: str) -> Catalogue:
    """Validate the parsed TOML and build the catalogue; every problem is one line."""
    _unknown(data, {"defaults", "variant"}, source)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise _invalid(source, "defaults", defaults, "a [defaults] table")
    _unknown(defaults, {"platforms"}, f"{source} [defaults]")
    entries = data.get("variant", [])
    if not isinstance(entries, list):
        raise _invalid(source, "variant", entries, "[[variant]] tables")
    default_platforms = defaults.get("platforms", [])
    variants = [
        _variant(entry, index, docker_dir, source, default_platforms)
        for index, entry in enumerate(entries)
    ]
    if not variants:
        raise SandboxError(f"{source}: no [[variant]] entries", "declare at least one variant")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SandboxError(
            f"{source}: variant declared twice: {', '.join(duplicates)}", "rename one"
        )
    marked = [v.name for v in variants if v.default]
    if len(marked) != 1:
        raise SandboxError(
            f"{source}: exactly one variant must be default = true (found {len(marked)})",
            "mark the default variant once",
        )
    suffixes = [v.tag_suffix for v in variants]
    if len(set(suffixes)) != len(suffixes):
        raise SandboxError(
            f"{source}: two variants share a tag suffix", "give each its own tag_suffix"
        )
    return Catalogue(docker_dir=docker_dir, variants=tuple(variants))


def load_catalogue(docker_dir: Path) -> Catalogue:
    """Read ``variants.toml`` from ``docker_dir``."""
    path = docker_dir / CATALOGUE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SandboxError(f"no variant catalogue at {path}", "run from the project root") from None
    except UnicodeDecodeError as error:
        raise SandboxError(
            f"{path}: not UTF-8 (byte {error.start})", "save the catalogue as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise SandboxError(f"{path}: {error}", "fix the TOML syntax") from None
    return parse_catalogue(data, docker_dir, str(path))
