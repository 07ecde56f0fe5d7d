"""The digests a library release runs: per variant, its index and each platform's image.

The release workflow writes ``pins.json`` into the package once the tested
images are merged (``invoke pin``), before the wheel is built, so that an
installed library pulls ``repo@sha256:…``, never a tag someone could move.
A source checkout has no pins: nothing is published for an unreleased
version, and ``ensure_image()`` builds its own marked image instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conjure_sandbox.catalogue import NAME, PLATFORM
from conjure_sandbox.config import Settings, pins_file
from conjure_sandbox.errors import SandboxError
from conjure_sandbox.registry import DIGEST

_FIX = "write the pins again with invoke pin"


@dataclass(frozen=True)
class Pin:
    """One variant as released: its index digest and the image digest per platform."""

    index: str
    platforms: Mapping[str, str]


@dataclass(frozen=True)
class Pins:
    """What a release published: version, repository and each variant's pin."""

    version: str
    image: str
    variants: Mapping[str, Pin]

    def reference(self, variant: str, image: str | None = None) -> str | None:
        """``<image>@<index digest>`` for ``variant``, or None when it was not released."""
        pin = self.variants.get(variant)
        return f"{image or self.image}@{pin.index}" if pin else None

    def to_json(self) -> str:
        variants = {
            name: {"index": pin.index, "platforms": dict(pin.platforms)}
            for name, pin in self.variants.items()
        }
        document = {"version": self.version, "image": self.image, "variants": variants}
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _digest(value: object, where: str) -> str:
    if not isinstance(value, str) or not DIGEST.match(value):
        raise SandboxError(f"{where}: {value!r} is not a sha256 digest", _FIX)
    return value


def parse_pins(document: Any, source: str) -> Pins:
    """Validate a pins document; every problem is one line naming where it is."""
    from conjure_sandbox.registry import parse_repository
    from conjure_sandbox.tags import parse_version

    if not isinstance(document, dict) or not isinstance(document.get("variants"), dict):
        raise SandboxError(f"{source}: not a pins document", _FIX)
    version = str(parse_version(str(document.get("version", ""))))
    image = parse_repository(str(document.get("image", ""))).name
    variants: dict[str, Pin] = {}
    for name, entry in document["variants"].items():
        where = f"{source} variant {name!r}"
        if not NAME.match(name) or not isinstance(entry, dict):
            raise SandboxError(f"{where}: not a variant pin", _FIX)
        platforms = entry.get("platforms")
        if not isinstance(platforms, dict) or not platforms:
            raise SandboxError(f"{where}: no platform digests", _FIX)
        for platform in platforms:
            if not PLATFORM.match(platform):
                raise SandboxError(f"{where}: {platform!r} is not a platform", _FIX)
        variants[name] = Pin(
            _digest(entry.get("index"), where),
            {p: _digest(d, f"{where} {p}") for p, d in platforms.items()},
        )
    return Pins(version, image, variants)


def load_pins(path: Path | None = None) -> Pins | None:
    """The release's pins (``config.pins_file``), or None in a source checkout (no file)."""
    path = path or pins_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SandboxError(f"{path}: {error.strerror}", "reinstall the package") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise SandboxError(f"{path}: {error.msg}", "reinstall the package") from None
    return parse_pins(document, str(path))


def pin(
    settings: Settings, record: Path, *, dry_run: bool = False, log: Callable[[str], None] = print
) -> Pins:
    """Check a publish record against this package and the registry, then write the pins.

    Every variant of the catalogue must be there, for this package's version
    and image, and the registry must serve each index by digest with exactly
    the recorded platform images.
    """
    from conjure_sandbox.catalogue import load_catalogue
    from conjure_sandbox.config import docker_dir
    from conjure_sandbox.registry import credentials_from_env, fetch_manifest, parse_repository
    from conjure_sandbox.version import package_version, same_version

    pins = load_pins(record)
    if pins is None:
        raise SandboxError(f"no publish record at {record}", "invoke publish --record FILE first")
    problems = []
    if not same_version(pins.version, package_version()):
        problems.append(f"version {pins.version}, not the package's {package_version()}")
    if pins.image != settings.image:
        problems.append(f"image {pins.image}, not {settings.image}")
    catalogue = load_catalogue(docker_dir())
    missing = [v.name for v in catalogue if v.name not in pins.variants]
    if missing:
        problems.append(f"no digest for {', '.join(missing)}")
    if problems:
        raise SandboxError(f"{record}: " + "; ".join(problems), "publish every variant, then pin")
    repository = parse_repository(pins.image)
    credentials = credentials_from_env(pins.image)
    for name, entry in pins.variants.items():
        served = fetch_manifest(repository, entry.index, credentials)
        if served is None or dict(served.platforms) != dict(entry.platforms):
            raise SandboxError(
                f"{pins.image}@{entry.index[:19]} ({name}) is not what the record says",
                "publish again, then pin the new record",
            )
        log(f"pinned         {name}: {pins.image}@{entry.index} ({', '.join(entry.platforms)})")
    target = pins_file()
    if not dry_run:
        target.write_text(pins.to_json(), encoding="utf-8")
        log(f"wrote {target}")
    return pins
