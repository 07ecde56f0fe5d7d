"""``conjure-sandbox``: the library user's command (maintainers use invoke)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from conjure_sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conjure_sandbox.pull import PullProgress

# A pull's progress on stderr: a line whenever a layer finishes, else at most this often.
PROGRESS_EVERY = 2.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conjure-sandbox", description="Sandbox images matching this library's version."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ensure = commands.add_parser("ensure", help="find, pull or build the image; print its ref")
    ensure.add_argument("--variant", help="default: the catalogue's default variant")
    ensure.add_argument("--registry", help="registry host to pull from instead of ghcr.io")
    ensure.add_argument("--no-pull", action="store_true", help="never pull")
    ensure.add_argument("--no-build", action="store_true", help="never build locally")
    commands.add_parser("variants", help="list the variants in the catalogue")
    tags = commands.add_parser("tags", help="print the tags a release version gets")
    tags.add_argument("version")
    tags.add_argument("--variant", action="append", default=[], help="(repeatable; default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "ensure":
            from conjure_sandbox.ensure import ensure_image

            ref = ensure_image(
                args.variant,
                registry=args.registry,
                pull=not args.no_pull,
                build=not args.no_build,
                log=lambda line: print(line, file=sys.stderr),
                progress=pull_printer(lambda line: print(line, file=sys.stderr, flush=True)),
            )
            print(ref)
        elif args.command == "variants":
            from conjure_sandbox.catalogue import load_catalogue
            from conjure_sandbox.config import docker_dir

            for v in load_catalogue(docker_dir()):
                mark = "*" if v.default else " "
                print(f"{mark} {v.name:<8} {','.join(v.platforms):<24} {v.description}")
        else:
            from conjure_sandbox.catalogue import load_catalogue
            from conjure_sandbox.config import Settings, docker_dir
            from conjure_sandbox.tags import release_tags

            image = Settings.from_env().image
            for v in load_catalogue(docker_dir()).select(tuple(args.variant)):
                tags = release_tags(args.version, v)
                print(f"{v.name}: " + " ".join(f"{image}:{t}" for t in tags.all))
    except SandboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def pull_printer(
    write: Callable[[str], None], clock: Callable[[], float] = time.monotonic
) -> Callable[[PullProgress], None]:
    """A ``progress`` callback that writes ``pulling: 3/7 layers, 12.3 of 35.9 MB`` lines:
    one when a layer finishes, else one every PROGRESS_EVERY seconds at most."""
    last: list[float | int] = [float("-inf"), -1]  # when, and layers done then

    def show(progress: PullProgress) -> None:
        now = clock()
        if progress.layers_done != last[1] or now - last[0] >= PROGRESS_EVERY:
            last[:] = [now, progress.layers_done]
            write(f"pulling: {progress.describe()}")

    return show


if __name__ == "__main__":
    sys.exit(main())
