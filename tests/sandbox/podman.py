"""A real rootful Podman (Debian's 4.3, netavark) running inside a private network namespace.

`start_podman(setup)` creates a namespace and a short temp dir holding Podman's storage (`--root`,
`--runroot`), its containers.conf and storage.conf, netavark's config dir, the events log and a
PATH whose `iptables*` are the set-up's flavour (netavark runs `iptables` from PATH), then starts
`podman system service` on a unix socket there: the Docker-compatible API portscope reads.
`stop_podman` removes containers (netavark takes its rules and the containers' namespaces away),
stops the service, conmon and everything else started for it, unmounts what is left, deletes the
namespace and the temp dir. As for the Docker sandbox, teardown runs from try/finally, at exit, and
for a run that died without it (`reap_stale`).

`start_podman(setup, rootless=True)` runs Podman as a user made for the test (a subuid range, an
XDG_RUNTIME_DIR, /dev/net/tun 0666 for slirp4netns), all removed or restored afterwards;
`start_podman(setup, ns=engine.ns)` runs it beside a sandboxed dockerd. Podman 4.3 keeps netavark's address
leases in /run/containers/networks/ipam.db whatever the config says: sandboxes share it (leases are
released when their containers are removed).

containers.conf: `runtime = "runc"` (crun refuses this kernel's hybrid cgroups), `cgroup_manager =
"cgroupfs"` (no systemd), `events_logger = "file"`, and ulimits below the machine's hard limits (Podman's
defaults exceed them). Nothing here touches the root namespace's firewall.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from tests.sandbox import daemon, engine, netns
from tests.sandbox.engine import BASE_PATH, BUSYBOX, REPO_ROOT, client_ns_name, wait_for
from tests.sandbox.netns import NetNs

PODMAN = "/usr/bin/podman"
IMAGE = "localhost/portscope-busybox:test"
TMP_PREFIX = "psp-"  # temp dirs /tmp/psp-XXXXXXXX; the namespace has the same name
#: Binaries the harness needs, for `need_root_tools`.
TOOLS = (
    "ip",
    "nsenter",
    "umount",
    PODMAN,
    "conmon",
    "runc",
    "/usr/lib/podman/netavark",
    BUSYBOX,
    "iptables-nft",
    "iptables-nft-save",
    "iptables-legacy",
    "iptables-legacy-save",
)
_SHIMS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")


@dataclass(frozen=True)
class PodmanSetup:
    """Which iptables flavour netavark writes to."""

    backend: Literal["nft", "legacy"]

    @property
    def id(self) -> str:
        """e.g. "podman-nft"."""
        return f"podman-{self.backend}"

    def iptables_binary(self, family: int = 4, tool: str = "") -> str:
        """This set-up's iptables flavour, e.g. `ip6tables-legacy-save` for family=6, tool="save"."""
        return daemon.iptables_binary(self.backend, family, tool)


PODMAN_SETUPS: tuple[PodmanSetup, ...] = (PodmanSetup("nft"), PodmanSetup("legacy"))


class PodmanError(RuntimeError):
    """The service did not start, or a podman command failed."""


@dataclass
class Podman:
    """A sandboxed rootful Podman: its namespace, temp dir and API service."""

    setup: PodmanSetup
    ns: NetNs
    root: Path
    service: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    containers: list[str] = field(default_factory=list)
    user: RootlessUser | None = None  # rootless: podman runs as this user
    own_ns: bool = True  # the namespace was made for this Podman (and goes with it)

    @property
    def socket(self) -> Path:
        if self.user is not None:
            return Path(self.user.runtime_dir) / "podman" / "podman.sock"
        return self.root / "p.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.root / "service.log"

    def env(self) -> dict[str, str]:
        """Environment for podman and for Docker-API clients of this Podman (portscope)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "CONTAINERS_"))}
        env["PATH"] = f"{self.root / 'bin'}:{BASE_PATH}"
        env["CONTAINERS_CONF"] = str(self.root / "conf" / "containers.conf")
        env["CONTAINERS_STORAGE_CONF"] = str(self.root / "conf" / "storage.conf")
        env["CONTAINERS_REGISTRIES_CONF"] = str(self.root / "conf" / "registries.conf")
        env["DOCKER_HOST"] = self.docker_host
        return env

    def argv(self, *args: str) -> list[str]:
        """`podman ARGS` inside the namespace: on this sandbox's storage, or as the rootless user."""
        if self.user is not None:
            return self.ns.argv([*self.user.argv(), PODMAN, *args])
        return self.ns.argv([PODMAN, "--root", str(self.root / "storage"), "--runroot", str(self.root / "run"), *args])

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS`; raises PodmanError on failure when `check`."""
        proc = subprocess.run(
            self.argv(*args), check=False, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise PodmanError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    # The Docker sandbox's name, so the publish harness drives both engines alike.
    docker = podman

    def inspect(self, *names: str) -> list[dict]:
        """`podman inspect` of containers as parsed JSON (Docker's field names)."""
        return json.loads(self.podman("inspect", *names).stdout)

    def run_container(self, name: str, *args: str) -> str:
        """`podman run -d --name NAME ARGS`; the container is removed by `stop_podman`. Returns its id."""
        self.containers.append(name)
        return self.podman("run", "-d", "--name", name, *args).stdout.strip()

    def iptables(self, *args: str, family: int = 4, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run this set-up's `iptables`/`ip6tables` flavour with ARGS inside the namespace."""
        return self.ns.run([self.setup.iptables_binary(family), "-w", *args], check=check, timeout=60)

    def iptables_save(self, family: int = 4, *, backend: Literal["nft", "legacy"] | None = None) -> str:
        """`iptables-save` output of the set-up's flavour (or the other `backend`) inside the namespace."""
        setup = self.setup if backend is None else PodmanSetup(backend)
        return self.ns.run([setup.iptables_binary(family, "save")], timeout=60).stdout

    def run_portscope(
        self, *args: str, timeout: float = 120, docker_host: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m portscope ARGS` inside the namespace, from the repo root, with DOCKER_HOST set (to
        this Podman's socket unless `docker_host` is given)."""
        env = self.env()
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["DOCKER_HOST"] = docker_host or self.docker_host
        return self.ns.run(
            [sys.executable, "-m", "portscope", *args], check=False, cwd=REPO_ROOT, env=env, timeout=timeout
        )

    def processes(self) -> list[psutil.Process]:
        """Processes in this Podman's namespace or started for it (cmdline names its temp dir)."""
        return daemon.processes_of(self.ns, self.root)


# --------------------------------------------------------------------------- lifecycle

_LIVE: daemon.Live[Podman] = daemon.Live(lambda pod: _teardown(pod))


def start_podman(
    setup: PodmanSetup, *, rootless: bool = False, ns: NetNs | None = None, ready_timeout: float = 60
) -> Podman:
    """Start `podman system service` for `setup` in a fresh namespace; on any failure everything is removed.

    `rootless`: a user made for the test runs Podman (slirp4netns and rootlessport, no NAT rule), with its
    API socket at /run/user/UID/podman/podman.sock; `setup` then only names the namespace's iptables.
    `ns`: run in that namespace (e.g. a Docker sandbox's, for a host with both engines), which is left in place.
    """
    reap_stale()
    daemon.install_exit_hooks(stop_all)
    root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir="/tmp"))
    pod = Podman(setup=setup, ns=ns or NetNs(root.name), root=root, own_ns=ns is None)
    _LIVE.add(pod)
    try:
        _write_state(pod)
        _write_config(pod)
        if rootless:
            pod.user = _add_user(root)
            _write_state(pod)
        if pod.own_ns:
            pod.ns = netns.create(name=root.name)
        _launch(pod)
        _wait_ready(pod, ready_timeout)
    except BaseException:
        stop_podman(pod)
        raise
    return pod


def stop_podman(pod: Podman) -> list[str]:
    """Remove containers, stop the service, conmon and the rest, unmount, delete the namespace and temp dir.

    Idempotent and shielded from Ctrl-C while it runs. Returns notes about anything that needed force.
    """
    return _LIVE.stop(pod)


@contextlib.contextmanager
def running_podman(setup: PodmanSetup) -> Iterator[Podman]:
    """A Podman for the duration of the block."""
    pod = start_podman(setup)
    try:
        yield pod
    finally:
        stop_podman(pod)


def _write_config(pod: Podman) -> None:
    root = pod.root
    conf = root / "conf"
    for sub in ("conf", "bin", "net", "tmp"):
        (root / sub).mkdir(exist_ok=True)
    (conf / "containers.conf").write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{root / "events.log"}"\n'
        f'tmp_dir = "{root / "tmp"}"\n'
        "[network]\n"
        'network_backend = "netavark"\n'
        f'network_config_dir = "{root / "net"}"\n'
    )
    (conf / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root / "storage"}"\nrunroot = "{root / "run"}"\n'
    )
    (conf / "registries.conf").write_text('unqualified-search-registries = []\nshort-name-mode = "permissive"\n')
    for name in _SHIMS:
        flavour = name.replace("tables", f"tables-{pod.setup.backend}", 1)  # iptables-save -> iptables-nft-save
        (root / "bin" / name).symlink_to(f"/usr/sbin/{flavour}")


def _launch(pod: Podman) -> None:
    argv = pod.argv("system", "service", "--time=0", *(() if pod.user else (pod.docker_host,)))
    with open(pod.log_path, "wb") as log:
        # A session of its own: a Ctrl-C at the terminal reaches pytest only, which then tears down in order.
        pod.service = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=pod.env(), start_new_session=True
        )
    _write_state(pod)


def _wait_ready(pod: Podman, timeout: float) -> None:
    import docker

    def ready() -> bool:
        assert pod.service is not None
        if pod.service.poll() is not None:
            code = pod.service.returncode
            raise PodmanError(f"podman system service exited with {code}:\n{daemon.log_tail(pod.log_path)}")
        if not pod.socket.exists():
            return False
        try:
            with docker.APIClient(base_url=pod.docker_host, timeout=5) as client:
                return bool(client.ping())
        except Exception:
            return False

    if not wait_for(ready, timeout, interval=0.2):
        raise PodmanError(f"podman system service not ready after {timeout} s:\n{daemon.log_tail(pod.log_path)}")


def _write_state(pod: Podman) -> None:
    user = None if pod.user is None else asdict(pod.user)
    daemon.write_state(pod.root, ns=pod.ns.name, setup=pod.setup.backend, user=user, own_ns=pod.own_ns)


def _teardown(pod: Podman) -> list[str]:
    ns, root = pod.ns, pod.root
    notes: list[str] = []
    sandboxes = _remove_containers(pod, notes)
    if pod.service is not None:
        with contextlib.suppress(psutil.Error):
            daemon.terminate([psutil.Process(pod.service.pid)], grace=15, notes=notes, what="podman service")
        with contextlib.suppress(Exception):
            pod.service.wait(timeout=5)
    # In a namespace shared with another engine, only what names the temp dir (conmon, with its containers).
    daemon.end_processes(ns if pod.own_ns else NetNs(f"{root.name}-none"), root, notes)
    if pod.user is not None:
        _remove_user(pod.user, notes)
    for path in sandboxes:  # the containers' namespaces, when `podman rm` could not remove them
        if os.path.exists(path):
            notes.append(f"removed container namespace {path}")
            subprocess.run(["umount", "-l", path], capture_output=True, check=False)
            with contextlib.suppress(OSError):
                os.unlink(path)
    daemon.remove_root(ns, root, notes, own_ns=pod.own_ns)
    return notes


def _remove_containers(pod: Podman, notes: list[str]) -> list[str]:
    """`podman rm -f` every container (netavark removes their rules); returns their namespaces' paths."""
    if not os.path.exists(pod.ns.path) or not (pod.user is not None or (pod.root / "storage").exists()):
        return []
    try:
        ids = pod.podman("ps", "-aq", check=False, timeout=30).stdout.split()
        if not ids:
            return []
        proc = pod.podman("inspect", "--format", "{{.NetworkSettings.SandboxKey}}", *ids, check=False, timeout=30)
        sandboxes = [line for line in proc.stdout.split() if line.startswith("/run/netns/")]
        proc = pod.podman("rm", "-f", "-v", "-t", "0", *ids, check=False, timeout=90)
        if proc.returncode != 0:
            notes.append(f"podman rm -f: {proc.stderr.strip()}")
        return sandboxes
    except (subprocess.TimeoutExpired, OSError) as exc:
        notes.append(f"removing containers: {exc!r}")
        return []


# --------------------------------------------------------------------------- safety nets


def stop_all() -> None:
    """Stop every Podman this process started and has not stopped yet."""
    _LIVE.stop_all()


def reap_stale() -> list[str]:
    """Tear down Podman sandboxes left by a test process that died without cleaning up (owner pid gone)."""
    reaped = []
    for root, state in daemon.stale_roots(TMP_PREFIX, _LIVE):
        ns = NetNs(state.get("ns") or root.name)
        user = RootlessUser(**state["user"]) if state.get("user") else None
        setup = PodmanSetup(state.get("setup", "nft"))
        _teardown(Podman(setup=setup, ns=ns, root=root, user=user, own_ns=state.get("own_ns", True)))
        netns.delete(NetNs(client_ns_name(ns.name)))
        reaped.append(root.name)
    return reaped


# --------------------------------------------------------------------------- rootless

TUN = "/dev/net/tun"


@dataclass(frozen=True)
class RootlessUser:
    """A user made for one test (removed after it), and what was changed for it."""

    name: str
    uid: int
    gid: int
    home: str
    tun_mode: int  # /dev/net/tun's mode before the test (slirp4netns opens it as the user)

    @property
    def runtime_dir(self) -> str:
        return f"/run/user/{self.uid}"

    def argv(self) -> list[str]:
        """The prefix that runs a command as this user, with a clean login-like environment."""
        return [
            "setpriv", "--reuid", str(self.uid), "--regid", str(self.gid), "--init-groups",
            "env", "-i", f"HOME={self.home}", f"USER={self.name}", f"LOGNAME={self.name}",
            f"XDG_RUNTIME_DIR={self.runtime_dir}", f"PATH={BASE_PATH}",
        ]  # fmt: skip


def _add_user(root: Path) -> RootlessUser:
    """`useradd` a user whose home is under `root` (it gets a subuid/subgid range), its XDG_RUNTIME_DIR, its
    containers.conf, and /dev/net/tun 0666 until `_remove_user` restores it."""
    name = "psrl" + root.name.removeprefix(TMP_PREFIX).lower()[:8]
    home = root / "home"
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, text=True)  # fmt: skip
    entry = pwd.getpwnam(name)
    user = RootlessUser(name, entry.pw_uid, entry.pw_gid, str(home), stat.S_IMODE(os.stat(TUN).st_mode))
    try:
        root.chmod(0o711)  # the user reaches its home under the temp dir
        conf = home / ".config" / "containers"
        conf.mkdir(parents=True)
        _rootless_conf(root / "conf" / "containers.conf", conf / "containers.conf")
        runtime = Path(user.runtime_dir)
        shutil.rmtree(runtime, ignore_errors=True)  # a previous user's, with the same uid
        runtime.mkdir(mode=0o700, parents=True)
        for path in (runtime, home, home / ".config", conf, conf / "containers.conf"):
            os.chown(path, user.uid, user.gid)
        os.chmod(TUN, 0o666)
    except BaseException:
        _remove_user(user, [])
        raise
    return user


def _rootless_conf(rootful: Path, path: Path) -> None:
    """The rootful containers.conf without its paths under the temp dir (a rootless Podman uses its own)."""
    paths = ("events_logfile_path", "tmp_dir", "network_config_dir")
    keep = [line for line in rootful.read_text().splitlines() if not line.startswith(paths)]
    path.write_text("\n".join(keep) + "\n")


def _remove_user(user: RootlessUser, notes: list[str]) -> None:
    """End the user's processes, remove its runtime dir and the user, and restore /dev/net/tun's mode."""
    procs = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.uids().real == user.uid:
                procs.append(proc)
    if procs:
        daemon.terminate(procs, grace=10, notes=notes, what=f"processes of {user.name}")
    shutil.rmtree(user.runtime_dir, ignore_errors=True)
    with contextlib.suppress(KeyError):
        if pwd.getpwnam(user.name).pw_uid == user.uid:
            proc = subprocess.run(["userdel", user.name], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                notes.append(f"userdel {user.name}: {proc.stderr.strip()}")
    with contextlib.suppress(OSError):
        os.chmod(TUN, user.tun_mode)


# --------------------------------------------------------------------------- image


def ensure_image(pod: Podman, tag: str = IMAGE) -> str:
    """Import the busybox image (as the Docker sandbox builds it) unless it is there; returns the tag."""
    return engine.ensure_image(pod, tag)
