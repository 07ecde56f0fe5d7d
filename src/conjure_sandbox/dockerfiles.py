"""Shared Dockerfile layers: one source each in ``docker/layers/``, copied into the variants.

A variant's Dockerfile stays a complete file that people read and buildx builds;
each shared layer sits in it between two markers::

    # >>> layers/tools.dockerfile
    ...the text of docker/layers/tools.dockerfile...
    # <<< layers/tools.dockerfile

``invoke dockerfiles`` rewrites every marked region from its layer file, and
``invoke dockerfiles --check`` (run by ``nox -s lint`` and the unit tests)
fails when a copy has drifted. BuildKit shares a layer between variants only
while its text and everything above it are byte-identical, which this keeps
true by construction. Pure: reads and returns text, writes nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from conjure_sandbox.errors import SandboxError

LAYERS_DIR = "layers"
FIX = "edit docker/layers/, then run invoke dockerfiles"
_BEGIN = re.compile(r"^# >>> (layers/[\w.-]+\.dockerfile)\n", re.MULTILINE)


def _end(name: str) -> str:
    return f"# <<< {name}\n"


def layer_names(text: str) -> tuple[str, ...]:
    """The shared layers a Dockerfile includes, in order (``layers/<name>.dockerfile``)."""
    return tuple(match.group(1) for match in _BEGIN.finditer(text))


def render(text: str, read_layer: Callable[[str], str], source: str) -> str:
    """``text`` with each marked region replaced by the current text of its layer file.

    ``read_layer`` maps ``layers/x.dockerfile`` to its content; ``source`` names
    the Dockerfile in errors.
    """
    out: list[str] = []
    position = 0
    for match in _BEGIN.finditer(text):
        if match.start() < position:
            continue
        name = match.group(1)
        end = text.find(_end(name), match.end())
        if end < 0:
            raise SandboxError(f"{source}: '# >>> {name}' has no '# <<< {name}' line", FIX)
        body = read_layer(name)
        if body and not body.endswith("\n"):
            body += "\n"
        out += [text[position : match.end()], body, _end(name)]
        position = end + len(_end(name))
    out.append(text[position:])
    return "".join(out)


@dataclass(frozen=True)
class Drift:
    """A Dockerfile whose shared-layer copies differ from ``docker/layers/``."""

    dockerfile: Path
    current: str
    rendered: str


def _reader(docker_dir: Path) -> Callable[[str], str]:
    # Several Dockerfiles include the same layer: read each file once.
    @functools.cache
    def read(name: str) -> str:
        path = docker_dir / name
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SandboxError(f"shared layer {path} does not exist", FIX) from None

    return read


def drifted(dockerfiles: Iterable[Path], docker_dir: Path) -> list[Drift]:
    """The Dockerfiles whose marked regions are not their layer files' current text."""
    read = _reader(docker_dir)
    found = []
    for path in dockerfiles:
        current = path.read_text(encoding="utf-8")
        rendered = render(current, read, str(path))
        if rendered != current:
            found.append(Drift(path, current, rendered))
    return found


def is_layer_file(relative: str) -> bool:
    """Whether a build-context path is a shared layer (its text is in the Dockerfiles)."""
    return relative.startswith(f"{LAYERS_DIR}/")
