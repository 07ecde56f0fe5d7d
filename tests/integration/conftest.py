from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_invoke(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` from the project root as a maintainer would."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        input=stdin,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def summary_rows(stdout: str) -> dict[str, str]:
    """``invoke build``'s summary table, row by variant."""
    table = stdout[stdout.index("variant    platforms") :].splitlines()[1:]
    skipped = ("-", " ", "note:")  # the rule under the header, wrapped errors, notes
    return {line.split()[0]: line for line in table if line and not line.startswith(skipped)}


def raw_manifest(ref: str) -> dict[str, Any]:
    """The manifest or index a registry serves for ``ref``, as JSON."""
    raw = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--raw", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(raw))


def index_platforms(ref: str, attestations: bool = False) -> set[str]:
    """The platforms in a registry index; attestation manifests (unknown/unknown) on request."""
    found = {
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in raw_manifest(ref).get("manifests", ())
    }
    return found if attestations else found - {"unknown/unknown"}


@pytest.fixture(scope="session")
def local_base() -> str:
    from conjure_sandbox.config import Settings

    return Settings.from_env().local_base


class Registry:
    """A Debian docker-registry of the test's own on a loopback port: started, stopped, restarted.

    The provisioned registry on 127.0.0.1:5000 is shared; publish scenarios that
    stop a registry or need auth run against one of these instead.
    """

    def __init__(
        self, root: Path, port: int, users: Mapping[str, str] | None = None, auth: str = ""
    ) -> None:
        """``users`` gives htpasswd basic auth; ``auth`` any other ``auth:`` section (token)."""
        import bcrypt

        self.root, self.port = root, port
        self.host = f"127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        if users:
            htpasswd = root / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"
                    for user, password in users.items()
                )
            )
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
        self.config = root / "config.yml"
        self.config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n{auth}"
        )

    def start(self) -> None:
        import time
        import urllib.error
        import urllib.request

        log = (self.root / "registry.log").open("ab")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(self.config)], stdout=log, stderr=log
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401: up, and asking for credentials
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"test registry on {self.host} did not start")

    def stop(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    started: list[Registry] = []

    def make(port: int, users: Mapping[str, str] | None = None, auth: str = "") -> Registry:
        root = tmp_path / f"registry-{port}"
        root.mkdir()
        registry = Registry(root, port, users, auth)
        registry.start()
        started.append(registry)
        return registry

    yield make
    for registry in started:
        registry.stop()
