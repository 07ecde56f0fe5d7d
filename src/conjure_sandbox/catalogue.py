"""The variant catalogue: docker/variants.toml read into frozen dataclasses.

Nothing else in the project defines a variant; a fifth variant is one more
``[[variant]]`` entry and its Dockerfile.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
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

    def get(self, name: str) -> Variant:
        """The variant called ``name``; an unknown name lists the valid ones."""
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


def _require(entry: dict[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise SandboxError(f"{where}: missing {key!r}", f"add {key} = ... to the entry")
    return entry[key]


def parse_catalogue(data: dict[str, Any], docker_dir: Path, source: str) -> Catalogue:
    """Validate the parsed TOML and build the catalogue; every problem is one line."""
    default_platforms = tuple(data.get("defaults", {}).get("platforms", ()))
    variants: list[Variant] = []
    for index, entry in enumerate(data.get("variant", [])):
        where = f"{source} variant #{index + 1}"
        name = str(_require(entry, "name", where))
        where = f"{source} variant {name!r}"
        expect = entry.get("expect", {})
        platforms = tuple(entry.get("platforms", default_platforms))
        if not platforms:
            raise SandboxError(
                f"{where}: no platforms", "set [defaults] platforms or platforms = [...]"
            )
        variants.append(
            Variant(
                name=name,
                dockerfile=docker_dir / str(_require(entry, "dockerfile", where)),
                tag_suffix=str(entry.get("tag_suffix", f"-{name}")),
                platforms=platforms,
                description=str(_require(entry, "description", where)),
                expect=Expectations(
                    commands=tuple(expect.get("commands", ())),
                    absent_commands=tuple(expect.get("absent_commands", ())),
                    python_modules=tuple(expect.get("python_modules", ())),
                    absent_python_modules=tuple(expect.get("absent_python_modules", ())),
                    node_modules=tuple(expect.get("node_modules", ())),
                    absent_node_modules=tuple(expect.get("absent_node_modules", ())),
                    fonts=tuple(expect.get("fonts", ())),
                    absent_fonts=tuple(expect.get("absent_fonts", ())),
                    size_budget_mb=expect.get("size_budget_mb"),
                ),
                default=bool(entry.get("default", False)),
            )
        )
    if not variants:
        raise SandboxError(f"{source}: no [[variant]] entries", "declare at least one variant")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SandboxError(
            f"{source}: variant declared twice: {', '.join(duplicates)}", "rename one"
        )
    defaults = [v.name for v in variants if v.default]
    if len(defaults) != 1:
        raise SandboxError(
            f"{source}: exactly one variant must be default = true (found {len(defaults)})",
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
    except tomllib.TOMLDecodeError as error:
        raise SandboxError(f"{path}: {error}", "fix the TOML syntax") from None
    return parse_catalogue(data, docker_dir, str(path))
