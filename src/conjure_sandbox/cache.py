"""Where build caches live between runs and machines, one scope per variant and platform set.

Pure: turns the ``--cache`` value into buildx ``--cache-from``/``--cache-to``
specs. Each variant and platform set writes its own scope, so variants built
in parallel never overwrite one another's cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from conjure_sandbox.catalogue import platforms_slug
from conjure_sandbox.compression import Compression
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import REPOSITORY


@dataclass(frozen=True)
class CacheStore:
    """A local directory, a registry repository, or nothing beyond the builder's own cache."""

    kind: Literal["local", "registry", "none"]
    location: str = ""

    def scope(self, variant: str, platforms: tuple[str, ...]) -> str:
        """The directory or registry tag holding one variant's cache for these platforms."""
        slug = platforms_slug(platforms)
        if self.kind == "local":
            return str(Path(self.location) / variant / slug)
        return f"{self.location}:{variant}-{slug.replace('+', '_')}"

    def _spec(self, scope: str, direction: Literal["from", "to"]) -> str:
        if self.kind == "local":
            place = "src" if direction == "from" else "dest"
            return f"type=local,{place}={scope}"
        return f"type=registry,ref={scope}"

    def imports(
        self, variant: str, platforms: tuple[str, ...], every: tuple[str, ...] = ()
    ) -> tuple[str, ...]:
        """Its own scope first, then each single platform's, then the scope of ``every``
        platform the variant is built for when that holds these: a missing scope only warns.

        So a single-platform build (an image test's) starts from a release build's layers.
        """
        if self.kind == "none":
            return ()
        scopes = [self.scope(variant, platforms)]
        if len(platforms) > 1:
            scopes += [self.scope(variant, (p,)) for p in platforms]
        if every != platforms and set(platforms) <= set(every):
            scopes.append(self.scope(variant, every))
        return tuple(self._spec(s, "from") for s in scopes)

    def exports(
        self, variant: str, platforms: tuple[str, ...], compression: Compression
    ) -> tuple[str, ...]:
        """Every layer, intermediate stages included (mode=max), into this build's scope,
        compressed as the image's layers are (a build from the cache then reuses its blobs
        as they are); a failed export leaves the image built (``build.cache_export_failure``
        reports it)."""
        if self.kind == "none":
            return ()
        # A failed export costs the next build its cache, not this build its image:
        # BuildKit's session to buildx has dropped mid-export under QEMU load.
        spec = self._spec(self.scope(variant, platforms), "to")
        return (f"{spec},mode=max,ignore-error=true,{compression.exporter_options}",)


NO_CACHE_STORE = CacheStore("none")


def parse_cache(value: str) -> CacheStore:
    """``none``; a directory (starts with ``/``, ``.`` or ``~``); or a registry repository.

    A repository carries no tag: the scopes become its tags.
    """
    value = value.strip()
    if value in ("", "none"):
        return CacheStore("none")
    if value[0] in "/.~":
        return CacheStore("local", str(Path(value).expanduser()))
    if not REPOSITORY.match(value):  # no tag: the scopes become its tags
        raise SandboxError(
            f"cache {value!r} (--cache or CONJURE_CACHE) is neither a directory nor a registry "
            "repository",
            "give a path such as ~/.cache/conjure-sandbox/buildx, a repository such as "
            "127.0.0.1:5000/conjure-sandbox/cache (no tag), or none",
        )
    return CacheStore("registry", value)


def exported(spec: str) -> bool:
    """Whether a ``--cache-to`` spec's cache exists (a directory is checked, a registry assumed)."""
    fields = spec_fields(spec)
    if fields.get("type") == "local":
        return (Path(fields["dest"]) / "index.json").is_file()
    return True


def spec_fields(spec: str) -> dict[str, str]:
    """``type=local,dest=/x`` as a mapping, the form python-on-whales takes."""
    return dict(part.split("=", 1) for part in spec.split(","))
