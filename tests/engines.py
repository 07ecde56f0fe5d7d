"""The engines users run, each started for the tests from Debian's packages.

- ``installed``: the engine the docker CLI reaches as it is, started by nobody here: the
  one ``scripts/provision-engine.sh`` runs (containerd image store), or on GitHub's runners
  their own Docker (classic store).
- ``classic``: a second dockerd with the classic store (overlay2), Docker 23 to 28's default
  and GitHub's runners'.
- ``rootless``: ``dockerd-rootless.sh`` (rootlesskit, slirp4netns) run by a non-root user.
- ``podman``: a rootless ``podman system service``, driven through the docker CLI; it pulls
  and runs, buildx does not drive it.
- ``remote`` and ``context``: a dockerd on loopback TCP with ``--tlsverify``, certificates
  made here, reached through DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, or through a
  docker context.

An ``Engine`` is what the docker CLI needs to reach one (``env``) and what an
executor must do there for uid 1000 to write its workspace. Every engine but
the provisioned one needs root to start; each is started once per test session.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from conjure_sandbox import prerequisites
from conjure_sandbox.config import Settings

KINDS = ("installed", "classic", "rootless", "podman", "remote", "context")
# Engines buildx can build on (Podman is pull-and-run only).
BUILDERS = ("installed", "classic", "rootless", "remote", "context")


def chosen(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """``kinds`` narrowed by CONJURE_ENGINES (a comma list; GitHub's runners name only
    ``installed``)."""
    wanted = [k for k in os.environ.get("CONJURE_ENGINES", "").split(",") if k]
    return tuple(k for k in kinds if not wanted or k in wanted)


# The non-root account that runs rootless Docker and rootless Podman.
ROOTLESS_USER = "conjure-rootless"
# Where engines started here keep their state: readable by the rootless account,
# unlike pytest's /tmp/pytest-of-root.
SCRATCH = Path("/var/tmp/conjure-engines")
# slirp4netns shows the host's loopback to a rootless engine at this address.
SLIRP_HOST = "10.0.2.2"


# What points the docker CLI at an engine: unset, it reaches the provisioned one.
ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT")


def _unset() -> list[str]:
    """``env`` arguments that drop every variable pointing the CLI elsewhere."""
    return [arg for name in (*ENGINE_VARIABLES, "DOCKER_CONFIG") for arg in ("-u", name)]


def provisioned_env() -> dict[str, str]:
    """This process's environment, pointing at the provisioned engine whatever a test set."""
    return {k: v for k, v in os.environ.items() if k not in (*ENGINE_VARIABLES, "DOCKER_CONFIG")}


@dataclass(frozen=True)
class Engine:
    """One running engine: how the docker CLI reaches it, and what it needs from executors."""

    kind: str
    env: Mapping[str, str]
    # The registry's address as this engine reaches the shared loopback registry.
    registry: str
    builds: bool
    containerd_store: bool
    # Container uids are the host's (rootful) or shifted into subordinate ids (rootless).
    maps_uids: bool
    # Where bind-mounted folders must live: a rootless engine cannot enter root's /tmp.
    scratch: Path
    # The account whose engine it is (rootless), which owns what the executor creates;
    # None: whoever runs the tests.
    owner: str | None = "root"

    def docker(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args],
            env={**provisioned_env(), **self.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} on {self.kind}: {result.stderr}")
        return result

    def workdir(self, name: str) -> Path:
        """A fresh folder the engine can bind-mount, owned by the engine's account."""
        path = self.scratch / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        if self.owner:
            shutil.chown(path, self.owner, self.owner)
        return path

    def give_workspace(self, path: Path, image: str) -> None:
        """What an executor does so that the sandbox user (uid 1000) can write ``path``.

        Rootful engines: the host's uid 1000 owns it. Rootless engines shift uids: the
        container's root is the engine's account, which owns ``path`` and so may hand it
        to the container's uid 1000 (a subordinate id on the host) from inside.
        """
        if not self.maps_uids:
            if os.geteuid() == 0:
                os.chown(path, 1000, 1000)
            else:  # GitHub's runner (uid 1001) cannot chown: it lets every uid write instead
                path.chmod(0o777)
            return
        self.docker(
            *("run", "--rm", "--user", "0", "--network", "none", "--cap-drop", "ALL"),
            *("--cap-add", "CHOWN", "-v", f"{path}:/w", image, "chown", "1000:1000", "/w"),
        )

    def empty(self, keep: str | None) -> None:
        """Remove every image and the build cache, then load ``keep`` (if any) again: a pull
        then downloads every layer that ``keep`` does not hold. Not on the installed engine."""
        assert self.env, "the provisioned engine is shared with the other tests"
        for command in (
            ("image", "prune", "--all", "--force"),
            ("builder", "prune", "--all", "--force"),
        ):
            self.docker(*command, check=False)
        if keep:
            self.load(keep)

    def load(self, ref: str, replace: bool = False) -> None:
        """Copy ``ref`` from the provisioned engine into this one (``docker save | load``),
        unless it holds that name already and not ``replace``."""
        if not self.env:
            return
        if not replace and self.docker("image", "inspect", ref, check=False).returncode == 0:
            return
        saved = subprocess.run(
            ["docker", "save", ref], env=provisioned_env(), capture_output=True, check=True
        ).stdout
        loaded = subprocess.run(
            ["docker", "load"],
            input=saved,
            env={**provisioned_env(), **self.env},
            capture_output=True,
        )
        if loaded.returncode != 0:
            raise AssertionError(f"loading {ref} into {self.kind}: {loaded.stderr.decode()}")


def _wait(what: str, log: Path, env: Mapping[str, str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            env={**provisioned_env(), **env},
            capture_output=True,
            timeout=30,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start within {seconds:.0f}s; its log ends:\n{tail}")


@contextmanager
def _process(argv: list[str], log: Path, env: Mapping[str, str] | None = None) -> Iterator[None]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=out, env={**os.environ, **(env or {})}, start_new_session=True
        )
    try:
        yield
    finally:
        # The whole group: rootlesskit and podman leave children of their own.
        try:
            os.killpg(process.pid, 15)
            process.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, 9)
            process.wait()


@contextmanager
def _bridge(name: str, subnet: str) -> Iterator[None]:
    """A bridge of the engine's own, with the forwarding and NAT its builds need to reach
    the network: the engine manages no iptables rules, so the provisioned engine's stay
    untouched."""
    gateway = subnet.replace(".0/24", ".1/24")
    rules = [
        ["-I", "FORWARD", "-i", name, "-j", "ACCEPT"],
        ["-I", "FORWARD", "-o", name, "-j", "ACCEPT"],
        ["-t", "nat", "-A", "POSTROUTING", "-s", subnet, "!", "-o", name, "-j", "MASQUERADE"],
    ]
    _undo(rules)  # what a killed run left
    subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)
    for step in (
        ["ip", "link", "add", name, "type", "bridge"],
        ["ip", "addr", "add", gateway, "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        subprocess.run(step, check=True, capture_output=True)
    for rule in rules:
        subprocess.run(["iptables", *rule], check=True, capture_output=True)
    try:
        yield
    finally:
        _undo(rules)
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def _undo(rules: list[list[str]]) -> None:
    """Delete every copy of each rule."""
    for rule in rules:
        undo = [("-D" if part in ("-I", "-A") else part) for part in rule]
        while subprocess.run(["iptables", *undo], capture_output=True).returncode == 0:
            pass


def _stop_leftover(pattern: str, user: str | None = None) -> None:
    """End what a killed test run left running (its engines outlive it: own sessions)."""
    who = ["-u", user] if user else []
    subprocess.run(["pkill", *who, "-f", "--", pattern], capture_output=True, check=False)
    for _ in range(100):
        probe = subprocess.run(["pgrep", *who, "-f", "--", pattern], capture_output=True)
        if probe.returncode != 0:
            return
        time.sleep(0.1)
    subprocess.run(["pkill", "-9", *who, "-f", "--", pattern], capture_output=True, check=False)


def _fresh(root: Path) -> None:
    """An empty folder for an engine's state, whatever an earlier run left there (mounts
    of a killed engine included)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)


def _dockerd(
    root: Path,
    hosts: list[str],
    env: Mapping[str, str],
    containerd_store: bool,
    bridge: tuple[str, str],
    extra: tuple[str, ...] = (),
) -> ExitStack:
    """A second rootful dockerd with its own data root, socket, containerd and bridge."""
    config = {
        "features": {"containerd-snapshotter": containerd_store},
    }
    (root / "daemon.json").write_text(json.dumps(config))
    argv = [
        *("dockerd", "--config-file", str(root / "daemon.json")),
        *("--data-root", str(root / "data"), "--exec-root", str(root / "exec")),
        *("--pidfile", str(root / "docker.pid"), *(a for h in hosts for a in ("-H", h))),
        *("--bridge", bridge[0], "--iptables=false", "--ip6tables=false"),
        *extra,
    ]
    stack = ExitStack()
    try:
        stack.enter_context(_bridge(*bridge))
        stack.enter_context(_process(argv, root / "dockerd.log"))
        _wait(f"dockerd in {root}", root / "dockerd.log", env)
    except BaseException:
        stack.close()
        raise
    return stack


@contextmanager
def installed_engine() -> Iterator[Engine]:
    """The engine the docker CLI reaches as installed; its store as ``prerequisites.probe``
    reads it for builds."""
    from python_on_whales import DockerClient

    facts = prerequisites.probe(DockerClient(client_call=["env", *_unset(), "docker"]))
    yield Engine(
        "installed",
        {},
        registry=Settings.from_env().registry,
        builds=True,
        containerd_store=facts.containerd_store,
        maps_uids=False,
        scratch=SCRATCH / "installed",
        owner=None,
    )


@contextmanager
def classic_engine() -> Iterator[Engine]:
    root = SCRATCH / "classic"
    _stop_leftover(f"--data-root {root / 'data'}")
    _fresh(root)
    socket = f"unix://{root / 'docker.sock'}"
    env = {"DOCKER_HOST": socket}
    with _dockerd(root, [socket], env, False, ("conjure-cls0", "172.31.251.0/24")):
        yield Engine(
            "classic",
            env,
            registry=Settings.from_env().registry,
            builds=True,
            containerd_store=False,
            maps_uids=False,
            scratch=root / "work",
        )


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.

    Returns the server's folder (ca, cert, key) and the client's, named as the docker CLI's
    DOCKER_CERT_PATH wants them (ca.pem, cert.pem, key.pem)."""
    server, client = directory / "server", directory / "client"
    for d in (server, client):
        d.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *new_key, "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=conjure-test-ca")  # fmt: skip
    for who, subject, extension in (
        (server, "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        (client, "/CN=conjure-test-client", "extendedKeyUsage=clientAuth"),
    ):
        (who / "ext.cnf").write_text(extension + "\n")
        openssl("req", *new_key, "-keyout", str(who / "key.pem"),
                "-out", str(who / "req.csr"), "-subj", subject)  # fmt: skip
        openssl("x509", "-req", "-in", str(who / "req.csr"), "-CA", "ca.pem", "-CAkey",
                "ca-key.pem", "-CAcreateserial", "-out", str(who / "cert.pem"), "-days", "2",
                "-extfile", str(who / "ext.cnf"))  # fmt: skip
        shutil.copy(directory / "ca.pem", who / "ca.pem")
    return server, client


@contextmanager
def remote_engine(port: int = 23760) -> Iterator[tuple[Engine, Engine]]:
    """A dockerd on loopback TCP with --tlsverify: reached through the environment variables,
    and through a docker context in a docker config of its own."""
    root = SCRATCH / "remote"
    _stop_leftover(f"--data-root {root / 'data'}")
    _fresh(root)
    server, client = make_certificates(root / "tls")
    address = f"tcp://127.0.0.1:{port}"
    env = {"DOCKER_HOST": address, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(client)}
    tls = (
        *("--tlsverify", "--tlscacert", str(server / "ca.pem")),
        *("--tlscert", str(server / "cert.pem"), "--tlskey", str(server / "key.pem")),
    )
    config = root / "docker-config"
    config.mkdir(parents=True, exist_ok=True)
    context_env = {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "conjure-remote"}
    common = dict(
        registry=Settings.from_env().registry,
        builds=True,
        containerd_store=True,
        maps_uids=False,
        scratch=root / "work",
    )
    with _dockerd(root, [address], env, True, ("conjure-rem0", "172.31.252.0/24"), tls):
        endpoint = (
            f"host={address},ca={client / 'ca.pem'},cert={client / 'cert.pem'},"
            f"key={client / 'key.pem'}"
        )
        subprocess.run(
            ["docker", "context", "create", "conjure-remote", "--docker", endpoint],
            env={**os.environ, "DOCKER_CONFIG": str(config)},
            check=True,
            capture_output=True,
        )
        yield Engine("remote", env, **common), Engine("context", context_env, **common)  # type: ignore[arg-type]


def rootless_account() -> pwd.struct_passwd:
    """The non-root account of the rootless engines, with subordinate uids and gids."""
    try:
        account = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        # Above the uids CI gives its runner account (1001, as GitHub's).
        subprocess.run(
            ["useradd", "--create-home", "-K", "UID_MIN=2000", ROOTLESS_USER],
            check=True,
            capture_output=True,
        )
        account = pwd.getpwnam(ROOTLESS_USER)
    for table in ("/etc/subuid", "/etc/subgid"):
        text = Path(table).read_text() if Path(table).exists() else ""
        if not any(line.startswith(f"{ROOTLESS_USER}:") for line in text.splitlines()):
            with Path(table).open("a") as out:
                out.write(f"{ROOTLESS_USER}:200000:65536\n")
    runtime = Path(f"/run/user/{account.pw_uid}")
    for path in (runtime, runtime / "podman"):
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, account.pw_uid, account.pw_gid)
    runtime.chmod(0o700)
    # What a systemd host has and this bare one lacks: a tun device anyone may open
    # (udev's 0666, for slirp4netns) and a shared root mount (for the engines' mounts).
    Path("/dev/net/tun").chmod(0o666)
    subprocess.run(["mount", "--make-rshared", "/"], check=True, capture_output=True)
    return account


def as_account(account: pwd.struct_passwd, env: Mapping[str, str]) -> list[str]:
    runtime = f"/run/user/{account.pw_uid}"
    settings = {
        "HOME": account.pw_dir,
        "USER": account.pw_name,
        "XDG_RUNTIME_DIR": runtime,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:"
        "/usr/share/docker.io/contrib",
        **env,
    }
    assignments = (f"{k}={v}" for k, v in settings.items())
    return ["runuser", "-u", account.pw_name, "--", "env", *assignments]


@contextmanager
def rootless_engine() -> Iterator[Engine]:
    """Rootless Docker: dockerd-rootless.sh with rootlesskit and slirp4netns, as a non-root
    account. Its daemon lives in a network namespace of its own, where the host's loopback
    registry is 10.0.2.2 (slirp4netns), so that address is allowed over plain http."""
    account = rootless_account()
    _stop_leftover("rootlesskit|dockerd", ROOTLESS_USER)
    root = SCRATCH / "rootless"
    shutil.rmtree(root, ignore_errors=True)
    (root / "work").mkdir(parents=True)
    config = {"insecure-registries": [f"{SLIRP_HOST}:{_port()}"]}
    (root / "daemon.json").write_text(json.dumps(config))
    for path in (root, root / "work"):
        os.chown(path, account.pw_uid, account.pw_gid)
    socket = f"unix:///run/user/{account.pw_uid}/docker.sock"
    slirp = {
        "DOCKERD_ROOTLESS_ROOTLESSKIT_NET": "slirp4netns",
        "DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK": "false",
    }
    argv = [
        *as_account(account, slirp),
        "dockerd-rootless.sh",
        *("--config-file", str(root / "daemon.json"), "--data-root", str(root / "data")),
        *("--exec-root", f"/run/user/{account.pw_uid}/docker-exec", "-H", socket),
    ]
    env = {"DOCKER_HOST": socket}
    with _process(argv, SCRATCH / "rootless.log"):
        _wait("rootless dockerd", SCRATCH / "rootless.log", env)
        yield Engine(
            "rootless",
            env,
            registry=f"{SLIRP_HOST}:{_port()}",
            builds=True,
            containerd_store=False,
            maps_uids=True,
            scratch=root / "work",
            owner=account.pw_name,
        )


def _port() -> str:
    return Settings.from_env().registry.rpartition(":")[2]


def hybrid_cgroups() -> bool:
    """Whether cgroup v1 controllers are mounted with a v2 hierarchy beside them."""
    return Path("/sys/fs/cgroup/unified").is_dir() and Path("/sys/fs/cgroup/memory").is_dir()


@contextmanager
def podman_engine() -> Iterator[Engine]:
    """Rootless Podman's Docker-compatible API, the loopback registry allowed over http."""
    account = rootless_account()
    _stop_leftover("podman system service", ROOTLESS_USER)
    root = SCRATCH / "podman"
    shutil.rmtree(root, ignore_errors=True)
    (root / "work").mkdir(parents=True)
    conf = Path(account.pw_dir) / ".config" / "containers"
    conf.mkdir(parents=True, exist_ok=True)
    registry = Settings.from_env().registry
    (conf / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n'
    )
    (conf / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root / "storage"}"\n'
        f'runroot = "/run/user/{account.pw_uid}/podman-run"\n'
    )
    # On a host with cgroup v1 controllers and a v2 hierarchy beside them ("hybrid"),
    # Podman's default runtime, crun, refuses every container ("cgroups in hybrid mode not
    # supported"); runc runs them. docs/engines.md says so for executor authors.
    engine = '[engine]\nruntime = "runc"\n' if hybrid_cgroups() else ""
    (conf / "containers.conf").write_text(engine)
    for path in (root, root / "work", *conf.parents[:2], conf, *conf.iterdir()):
        if str(path).startswith((str(root), account.pw_dir)):
            os.chown(path, account.pw_uid, account.pw_gid)
    socket_path = f"/run/user/{account.pw_uid}/podman/podman.sock"
    argv = [
        *as_account(account, {}),
        *("podman", "system", "service", "--time=0", f"unix://{socket_path}"),
    ]
    env = {"DOCKER_HOST": f"unix://{socket_path}"}
    with _process(argv, SCRATCH / "podman.log"):
        _wait("podman system service", SCRATCH / "podman.log", env)
        yield Engine(
            "podman",
            env,
            registry=registry,
            builds=False,
            containerd_store=False,
            maps_uids=True,
            scratch=root / "work",
            owner=account.pw_name,
        )


class Engines:
    """The engines a test session started, each once, on first use; all stopped by close()."""

    @staticmethod
    def require(config: object) -> None:
        """Skip a test that starts engines without root, or fail it when engines are
        required (``--require-docker``, as in CI)."""
        import pytest

        if os.geteuid() == 0:
            return
        problem = "starting engines of the tests' own needs root (.ci/run's sessions are)"
        if config.getoption("--require-docker"):  # type: ignore[attr-defined]
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._running: dict[str, Engine] = {}

    def get(self, kind: str) -> Engine:
        if kind not in self._running:
            SCRATCH.mkdir(parents=True, exist_ok=True)
            if SCRATCH.stat().st_uid == os.geteuid():
                SCRATCH.chmod(0o755)  # the rootless account enters it
            if kind in ("remote", "context"):
                remote, context = self._stack.enter_context(remote_engine())
                self._running.update(remote=remote, context=context)
            else:
                starters = {
                    "installed": installed_engine,
                    "classic": classic_engine,
                    "rootless": rootless_engine,
                    "podman": podman_engine,
                }
                self._running[kind] = self._stack.enter_context(starters[kind]())
        return self._running[kind]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
