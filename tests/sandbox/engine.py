"""A real Docker engine (dockerd 20.10) running inside a private network namespace.

`start_engine(setup)` creates a namespace, starts dockerd in it with its own data root,
exec root and socket under a short temp dir, and waits until it answers; `stop_engine`
removes everything again: containers, dockerd, its containerd, shims and docker-proxy
processes, leftover mounts, the namespace and the temp dir. Teardown runs from
try/finally, from an atexit hook, and for a previous run that died without it
(`reap_stale`), so a failed or interrupted run leaves nothing behind.

Nothing here touches the root namespace: all rules and traffic live in the engine's
namespace.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import psutil

from tests.sandbox import netns
from tests.sandbox.daemon import (
    Live,
    end_processes,
    install_exit_hooks,
    iptables_binary,
    log_tail,
    processes_of,
    remove_root,
    stale_roots,
    terminate,
    write_state,
)
from tests.sandbox.netns import NetNs

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # not /usr/local/bin/docker, a different client
BUSYBOX = "/usr/bin/busybox"
IMAGE = "portscope-busybox:test"
#: Binaries the harness needs, for `need_root_tools`.
TOOLS = (
    "ip",
    "nsenter",
    "mount",
    "umount",
    DOCKERD,
    DOCKER,
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "docker-proxy",
    BUSYBOX,
    "iptables-nft",
    "iptables-nft-save",
    "ip6tables-nft",
    "iptables-legacy",
    "iptables-legacy-save",
    "ip6tables-legacy",
)

TMP_PREFIX = "pse-"  # temp dirs /tmp/pse-XXXXXXXX; the engine namespace has the same name
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LEGACY_SHIMS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")
#: busybox applets linked into the image.
APPLETS = (
    "sh", "ash", "cat", "echo", "httpd", "nc", "sleep", "ls", "mkdir", "ip", "ps", "wget", "printf", "true", "env",
    "hostname", "netstat", "id", "kill",
)  # fmt: skip

T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """How dockerd is configured: iptables backend and userland proxy."""

    backend: Literal["nft", "legacy"]
    userland_proxy: bool

    @property
    def id(self) -> str:
        """e.g. "nft-proxy", "legacy-noproxy"."""
        return f"{self.backend}-{'proxy' if self.userland_proxy else 'noproxy'}"

    def iptables_binary(self, family: int = 4, tool: str = "") -> str:
        """This set-up's iptables flavour, e.g. `ip6tables-legacy-save` for family=6, tool="save"."""
        return iptables_binary(self.backend, family, tool)


SETUPS: tuple[Setup, ...] = (
    Setup("nft", True),
    Setup("nft", False),
    Setup("legacy", True),
    Setup("legacy", False),
)


class EngineError(RuntimeError):
    """dockerd did not start, or a docker command failed."""


@dataclass
class Engine:
    """A sandboxed dockerd: its namespace, socket and temp dir."""

    setup: Setup
    ns: NetNs
    root: Path
    process: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    containers: list[str] = field(default_factory=list)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.root / 'd.sock'}"

    @property
    def log_path(self) -> Path:
        return self.root / "dockerd.log"

    def env(self) -> dict[str, str]:
        """Environment for docker clients of this engine."""
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.docker_host
        env["DOCKER_CONFIG"] = str(self.root / "client")
        env.pop("DOCKER_CONTEXT", None)
        env.pop("DOCKER_TLS_VERIFY", None)
        return env

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `/usr/bin/docker ARGS` against this engine; raises EngineError on failure when `check`."""
        proc = subprocess.run(
            [DOCKER, *args], check=False, env=self.env(), capture_output=True, text=True, timeout=timeout, input=input
        )
        if check and proc.returncode != 0:
            raise EngineError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def inspect(self, *names: str) -> list[dict]:
        """`docker inspect` of containers (or other objects) as parsed JSON."""
        return json.loads(self.docker("inspect", *names).stdout)

    def run_container(self, name: str, *args: str) -> str:
        """`docker run -d --name NAME ARGS`; the container is removed by `stop_engine`. Returns its id."""
        self.containers.append(name)
        return self.docker("run", "-d", "--name", name, *args).stdout.strip()

    def iptables(self, *args: str, family: int = 4, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run this set-up's `iptables`/`ip6tables` flavour with ARGS inside the namespace."""
        return self.ns.run([self.setup.iptables_binary(family), "-w", *args], check=check, timeout=60)

    def iptables_save(self, family: int = 4, *, backend: Literal["nft", "legacy"] | None = None) -> str:
        """`iptables-save` output of the set-up's flavour (or the other `backend`) inside the namespace."""
        setup = self.setup if backend is None else Setup(backend, self.setup.userland_proxy)
        return self.ns.run([setup.iptables_binary(family, "save")], timeout=60).stdout

    def run_portscope(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `python -m portscope ARGS` inside the namespace, from the repo root, with DOCKER_HOST set."""
        env = self.env()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        return self.ns.run(
            [sys.executable, "-m", "portscope", *args], check=False, cwd=REPO_ROOT, env=env, timeout=timeout
        )

    def processes(self) -> list[psutil.Process]:
        """Processes in this engine's namespace or started for it (cmdline names its temp dir)."""
        return processes_of(self.ns, self.root)


# --------------------------------------------------------------------------- lifecycle

_LIVE: Live[Engine] = Live(lambda engine: _teardown(engine.ns, engine.root, engine.process, engine))


def start_engine(setup: Setup, *, ready_timeout: float = 90) -> Engine:
    """Start dockerd for `setup` in a fresh namespace; on any failure everything is removed again."""
    reap_stale()
    install_exit_hooks(stop_all)
    root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir="/tmp"))
    engine = Engine(setup=setup, ns=NetNs(root.name), root=root)
    _LIVE.add(engine)
    try:
        _write_state(engine)
        engine.ns = netns.create(name=root.name)
        _launch(engine)
        _wait_ready(engine, ready_timeout)
    except BaseException:
        stop_engine(engine)
        raise
    return engine


def stop_engine(engine: Engine) -> list[str]:
    """Remove containers, stop dockerd and everything it started, unmount, delete the namespace and temp dir.

    Idempotent and shielded from Ctrl-C while it runs. Returns notes about anything that needed force
    or could not be removed.
    """
    return _LIVE.stop(engine)


@contextlib.contextmanager
def running_engine(setup: Setup) -> Iterator[Engine]:
    """An engine for the duration of the block."""
    engine = start_engine(setup)
    try:
        yield engine
    finally:
        stop_engine(engine)


def _launch(engine: Engine) -> None:
    root = engine.root
    (root / "client").mkdir(exist_ok=True)  # exists when dockerd is started again (a simulated reboot)
    (root / "daemon.json").write_text("{}\n")
    path = BASE_PATH
    if engine.setup.backend == "legacy":
        shims = root / "bin"
        shims.mkdir(exist_ok=True)
        for name in LEGACY_SHIMS:
            legacy = name.replace("tables", "tables-legacy", 1)  # iptables-save -> iptables-legacy-save
            if not (shims / name).is_symlink():
                (shims / name).symlink_to(f"/usr/sbin/{legacy}")
        path = f"{shims}:{BASE_PATH}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["PATH"] = path
    argv = engine.ns.argv(
        [
            DOCKERD,
            "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"),
            "-H", engine.docker_host,
            "--pidfile", str(root / "d.pid"),
            "--config-file", str(root / "daemon.json"),
            f"--userland-proxy={'true' if engine.setup.userland_proxy else 'false'}",
        ]
    )  # fmt: skip
    with open(engine.log_path, "wb") as log:
        # A session of its own: a Ctrl-C at the terminal reaches pytest only, which then tears down in order.
        engine.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    _write_state(engine)


def _wait_ready(engine: Engine, timeout: float) -> None:
    def ready() -> bool:
        assert engine.process is not None
        if engine.process.poll() is not None:
            raise EngineError(f"dockerd exited with {engine.process.returncode}:\n{log_tail(engine.log_path)}")
        if not (engine.root / "d.sock").exists():
            return False
        return engine.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0

    if not wait_for(ready, timeout, interval=0.2):
        raise EngineError(f"dockerd not ready after {timeout} s:\n{log_tail(engine.log_path)}")


def _write_state(engine: Engine) -> None:
    write_state(engine.root, ns=engine.ns.name, dockerd=engine.process.pid if engine.process else None)


def _teardown(ns: NetNs, root: Path, process: subprocess.Popen[bytes] | None, engine: Engine | None) -> list[str]:
    notes: list[str] = []
    dockerd = _dockerd_process(root, process)
    if engine is not None and dockerd is not None and dockerd.is_running():
        _remove_containers(engine, notes)
    if dockerd is not None:
        terminate([dockerd], grace=30, notes=notes, what="dockerd")
    if process is not None:
        with contextlib.suppress(Exception):
            process.wait(timeout=5)
    end_processes(ns, root, notes)
    remove_root(ns, root, notes)
    return notes


def _remove_containers(engine: Engine, notes: list[str]) -> None:
    try:
        ids = engine.docker("ps", "-aq", check=False, timeout=30).stdout.split()
        if ids:
            proc = engine.docker("rm", "-f", "-v", *ids, check=False, timeout=90)
            if proc.returncode != 0:
                notes.append(f"docker rm -f: {proc.stderr.strip()}")
    except (subprocess.TimeoutExpired, OSError) as exc:
        notes.append(f"removing containers: {exc!r}")


def _dockerd_process(root: Path, process: subprocess.Popen[bytes] | None) -> psutil.Process | None:
    pids = [process.pid] if process is not None else []
    with contextlib.suppress(OSError, ValueError):
        pids.append(int((root / "d.pid").read_text().strip()))
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if f"{root}/" in " ".join(proc.cmdline()):
                return proc
        except psutil.Error:
            continue
    return None


# --------------------------------------------------------------------------- safety nets


def stop_all() -> None:
    """Stop every engine this process started and has not stopped yet."""
    _LIVE.stop_all()


def reap_stale() -> list[str]:
    """Tear down engines left by a test process that died without cleaning up (owner pid gone)."""
    reaped = []
    for root, state in stale_roots(TMP_PREFIX, _LIVE):
        ns_name = state.get("ns") or root.name
        _teardown(NetNs(ns_name), root, None, None)
        netns.delete(NetNs(client_ns_name(ns_name)))
        reaped.append(root.name)
    return reaped


def client_ns_name(engine_ns_name: str) -> str:
    """The client namespace paired with an engine namespace ("pse-x" -> "psc-x"), so stale ones can be found."""
    return "psc-" + engine_ns_name.removeprefix(TMP_PREFIX)


# --------------------------------------------------------------------------- image


def busybox_tarball() -> bytes:
    """A root filesystem holding busybox-static as /bin/busybox plus applet symlinks, as an uncompressed tar.

    /lib and /lib64 point into /usr, which is empty: a container may mount the host's /usr there read-only
    to run a host binary (the UDP echo uses /usr/bin/python3; busybox's nc has no UDP mode).
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("bin", "etc", "tmp", "www", "proc", "sys", "dev", "root", "usr", "var", "var/www"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        # So that host binaries work when the host's /usr is mounted read-only at /usr (merged-/usr layout).
        for name, target in (("lib", "usr/lib"), ("lib64", "usr/lib64")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            info.mode = 0o777
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mode = 0o777
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class ImageStore(Protocol):
    """A sandbox whose engine answers `docker`-style commands (dockerd, or Podman under the same name)."""

    root: Path

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]: ...


def ensure_image(engine: ImageStore, tag: str = IMAGE) -> str:
    """Import the busybox image into `engine` (no registry needed) unless it is there; returns the tag."""
    if engine.docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    tar = engine.root / "bb.tar"
    tar.write_bytes(busybox_tarball())
    engine.docker("import", "-c", 'CMD ["/bin/sh"]', str(tar), tag)
    tar.unlink()
    return tag


# --------------------------------------------------------------------------- misc


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.25) -> T | None:
    """Call `predicate` until it returns something truthy or `timeout` seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
