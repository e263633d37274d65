"""A fleet of hosts reached over real SSH: network namespaces, each running its own sshd.

`ssh_fleet(specs)` makes a temp dir /tmp/psh-XXXXXXXX holding everything the fleet needs (a client key, each
host's host key, sshd_config and pid file, `authorized_keys`, `known_hosts` and an `ssh_config`), a client
namespace, and one namespace per host: a sandboxed dockerd's (tests/sandbox/engine.py) when the spec names an
engine set-up, else a fresh one. Each host is joined to the client by its own veth:

    client 198.51.100.1/32 (on lo) -- psfN | psfleet0 -- host N 198.51.100.(10+N)/32

with a /32 route each way and, in the client, a blackhole route for the rest of 198.51.100.0/24, so a
destination without a host fails at once and nothing leaves the machine. No namespace has any other route.

sshd (Debian's openssh-server) runs in the host's namespace through `nsenter --net=...`: key-based login only,
its own config, host key and pid file, `SetEnv DOCKER_HOST=...` (the host's engine, else a socket that does not
exist, so nothing ever reads the machine's own engine), `PORTSCOPE_STATE_DIR` (a folder of the host's own) and
`PATH`: by default this checkout's venv bin folder (sys.executable's: its `portscope` and `python3`) comes first,
so portscope is "installed" there; a spec with `portscope=False` leaves it out (the standard folders only).
The generated ssh_config names the hosts `h1`, `h2`, ... (as root), `ALIAS-user` (as a non-root user made for
the fleet, with `login_user=True`) and any `unreachable` aliases (addresses in the blackholed range), with
`BatchMode yes` and a known_hosts file filled with the hosts' keys beforehand (strict checking stays on).
Commands of the client run in the client namespace with `PORTSCOPE_SSH_COMMAND="ssh -F <ssh_config>"` and
XDG_RUNTIME_DIR in the temp dir (where portscope keeps its ssh control sockets: each fleet has its own).

`grant_sudo(fleet)` (or `login_sudo=True`) lets the non-root user run `sudo -n python3` without a password: a
sudoers drop-in /etc/sudoers.d/portscope-test-<temp dir name> (mode 0440, checked with `visudo -cf` before it is
moved in place) naming only that user, only the python3 that `sudo python3` finds on Debian's secure_path, and
keeping PORTSCOPE_STATE_DIR (so portscope run by that root collector uses the host's state folder, never the
machine's /var/lib/portscope). `revoke_sudo` removes it. The grant is root for that user in effect (python3 runs
anything); the user exists only for the fleet and only the fleet's key logs in as it.

Teardown (try/finally, at exit, and for a run that died without it, through `reap_stale`) ends the sshds and
their sessions, stops the engines, deletes every namespace, removes the sudoers drop-in, the user and the temp dir.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.sandbox import daemon, netns
from tests.sandbox.engine import REPO_ROOT, Engine, Setup, start_engine, stop_engine, wait_for
from tests.sandbox.netns import NetNs

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
#: Binaries the fleet needs, for `need_root_tools` (the engines' own come from engine.TOOLS).
TOOLS = ("ip", "nsenter", SSHD, SSH, SSH_KEYGEN, "useradd", "userdel")
SUDO = "/usr/bin/sudo"
VISUDO = "/usr/sbin/visudo"
#: Binaries `grant_sudo` needs (Debian's sudo package).
SUDO_TOOLS = (SUDO, VISUDO)
SUDOERS_DIR = Path("/etc/sudoers.d")
SUDOERS_PREFIX = "portscope-test-"  # then the fleet's temp dir name: no '.', which sudo's includedir would skip
TMP_PREFIX = "psh-"
NETWORK = "198.51.100"  # TEST-NET-2 (RFC 5737): documentation addresses, never routed anywhere
CLIENT_IP = f"{NETWORK}.1"
FIRST_HOST = 10  # host N (from 0) is 198.51.100.(10+N)
UNREACHABLE_FIRST = 250  # unreachable aliases point at 198.51.100.250 onwards: blackholed
HOST_IF = "psfleet0"
STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it (the package's service makes it)
#: In PRIVSEP_DIR when a fleet made it: the last fleet to end (in any process) removes both.
PRIVSEP_MARK = PRIVSEP_DIR / "made-by-portscope-tests"


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One host: its ssh alias, the engine set-up it runs (None: no engine, only what is loaded into it), and
    whether portscope is installed there (this checkout's venv bin folder first on its PATH)."""

    alias: str
    engine: Setup | None = None
    portscope: bool = True


@dataclass(frozen=True, slots=True)
class LoginUser:
    """The non-root user made for the fleet (removed with it)."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass
class FleetHost:
    """A host of the fleet: its namespace, address, engine, folder and sshd."""

    alias: str
    ns: NetNs
    address: str
    root: Path
    engine: Engine | None = None
    sshd: subprocess.Popen[bytes] | None = None
    portscope_installed: bool = True

    @property
    def path(self) -> str:
        """The PATH of a login: this checkout's venv bin folder first when portscope is installed there."""
        venv_bin = [str(Path(sys.executable).parent)] if self.portscope_installed else []
        return ":".join([*venv_bin, *STANDARD_PATH])

    @property
    def docker_host(self) -> str:
        """The engine's socket, else one that does not exist (never the machine's own engine)."""
        if self.engine is not None:
            return self.engine.docker_host
        return f"unix://{self.root / 'no-docker.sock'}"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def env(self) -> dict[str, str]:
        """What a process on this host sees: DOCKER_HOST and PORTSCOPE_STATE_DIR as sshd sets them."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "PORTSCOPE_"))}
        env["DOCKER_HOST"] = self.docker_host
        env["PORTSCOPE_STATE_DIR"] = str(self.state_dir)
        env["PYTHONPATH"] = str(REPO_ROOT)
        return env

    def portscope(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """This host's own local `python -m portscope ARGS`, run inside its namespace."""
        argv = self.ns.argv([sys.executable, "-m", "portscope", *args])
        return subprocess.run(
            argv, cwd=REPO_ROOT, env=self.env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip


@dataclass
class Fleet:
    """The fleet: its temp dir, client namespace, hosts by alias, the non-root user and the unreachable aliases."""

    root: Path
    client_ns: NetNs
    hosts: dict[str, FleetHost] = field(default_factory=dict)
    user: LoginUser | None = None
    unreachable: tuple[str, ...] = ()
    stopped: bool = False

    @property
    def ns(self) -> NetNs:
        """The client namespace (what `daemon.Live` and `processes_of` look at)."""
        return self.client_ns

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def runtime_dir(self) -> Path:
        """The client's XDG_RUNTIME_DIR: portscope keeps its ssh control sockets there, so two fleets with the
        same addresses never share a multiplexed connection, and the sockets go with the fleet."""
        return self.root / "run"

    @property
    def sudoers(self) -> Path:
        """The fleet's sudoers drop-in (there only while `grant_sudo` is in force)."""
        return sudoers_path(self.root)

    @property
    def ssh_command(self) -> str:
        """The value of PORTSCOPE_SSH_COMMAND."""
        return f"{SSH} -F {self.ssh_config}"

    def env(self) -> dict[str, str]:
        """The client's environment: PORTSCOPE_SSH_COMMAND, this checkout importable, no Docker settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "PORTSCOPE_", "SSH_"))}
        env["PORTSCOPE_SSH_COMMAND"] = self.ssh_command
        env["XDG_RUNTIME_DIR"] = str(self.runtime_dir)
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["DOCKER_HOST"] = f"unix://{self.root / 'no-docker.sock'}"
        return env

    def portscope_argv(self, *args: str) -> list[str]:
        """`python -m portscope ARGS` in the client namespace."""
        return self.client_ns.argv([sys.executable, "-m", "portscope", *args])

    def portscope(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """`python -m portscope ARGS` in the client namespace, stdin closed (nothing may prompt)."""
        return subprocess.run(
            self.portscope_argv(*args), cwd=REPO_ROOT, env=self.env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def ssh(self, alias: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """`ssh -F <ssh_config> ALIAS ARGV` from the client namespace, stdin closed."""
        return subprocess.run(
            self.client_ns.argv([SSH, "-F", str(self.ssh_config), alias, *argv]), env=self.env(),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip


# --------------------------------------------------------------------------- lifecycle

_LIVE: daemon.Live[Fleet] = daemon.Live(lambda fleet: _teardown(fleet))


def start_fleet(
    specs: Sequence[HostSpec], *, login_user: bool = False, login_sudo: bool = False, unreachable: Sequence[str] = ()
) -> Fleet:
    """Start the client, the hosts of `specs` (in order) and their sshds; on any failure everything is removed.
    `login_sudo` grants the non-root user `sudo -n python3` (`grant_sudo`; implies `login_user`)."""
    aliases = [s.alias for s in specs] + list(unreachable)
    if len(set(aliases)) != len(aliases) or len(specs) > UNREACHABLE_FIRST - FIRST_HOST:
        raise ValueError(f"distinct aliases and at most {UNREACHABLE_FIRST - FIRST_HOST} hosts: {aliases}")
    reap_stale()
    daemon.install_exit_hooks(stop_all)
    root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir="/tmp"))
    root.chmod(0o711)  # the non-root user reaches its home and the authorized_keys below
    fleet = Fleet(root=root, client_ns=NetNs(f"{root.name}-c"), unreachable=tuple(unreachable))
    _LIVE.add(fleet)
    try:
        _write_state(fleet)
        fleet.client_ns = netns.create(name=fleet.client_ns.name)
        _route_client(fleet)
        _ssh_keygen(root / "client_key")
        fleet.runtime_dir.mkdir(mode=0o700)
        if login_user or login_sudo:
            fleet.user = _add_user(root)
            _write_state(fleet)
        if login_sudo:
            grant_sudo(fleet)
        for index, spec in enumerate(specs):
            _start_host(fleet, spec, index)
            _write_state(fleet)
        _write_client_files(fleet)
        _start_sshds(fleet)
    except BaseException:
        stop_fleet(fleet)
        raise
    return fleet


def stop_fleet(fleet: Fleet) -> list[str]:
    """End the sshds, stop the engines, delete the namespaces, the user and the temp dir. Idempotent; returns
    notes about anything that needed force."""
    return _LIVE.stop(fleet)


@contextlib.contextmanager
def ssh_fleet(
    specs: Sequence[HostSpec], *, login_user: bool = False, login_sudo: bool = False, unreachable: Sequence[str] = ()
) -> Iterator[Fleet]:
    """A fleet for the duration of the block."""
    fleet = start_fleet(specs, login_user=login_user, login_sudo=login_sudo, unreachable=unreachable)
    try:
        yield fleet
    finally:
        stop_fleet(fleet)


def _start_host(fleet: Fleet, spec: HostSpec, index: int) -> None:
    folder = fleet.root / spec.alias
    folder.mkdir(mode=0o755)
    (folder / "state").mkdir()
    address = f"{NETWORK}.{FIRST_HOST + index}"
    if spec.engine is not None:
        engine = start_engine(spec.engine)
        host = FleetHost(spec.alias, engine.ns, address, folder, engine=engine, portscope_installed=spec.portscope)
        fleet.hosts[spec.alias] = host  # torn down with the fleet if the rest fails
    else:
        host = FleetHost(
            spec.alias, NetNs(f"{fleet.root.name}-{spec.alias}"), address, folder, portscope_installed=spec.portscope
        )
        fleet.hosts[spec.alias] = host
        netns.create(name=host.ns.name)
    client_if = f"psf{index}"
    _ip(fleet.client_ns, "link", "add", client_if, "type", "veth", "peer", "name", HOST_IF, "netns", host.ns.name)
    _ip(host.ns, "addr", "add", f"{address}/32", "dev", HOST_IF)
    _ip(host.ns, "link", "set", HOST_IF, "up")
    _ip(host.ns, "route", "add", f"{CLIENT_IP}/32", "dev", HOST_IF)
    _ip(fleet.client_ns, "link", "set", client_if, "up")
    _ip(fleet.client_ns, "route", "add", f"{address}/32", "dev", client_if, "src", CLIENT_IP)
    _ssh_keygen(folder / "ssh_host_ed25519_key")


def _route_client(fleet: Fleet) -> None:
    _ip(fleet.client_ns, "addr", "add", f"{CLIENT_IP}/32", "dev", "lo")
    _ip(fleet.client_ns, "route", "add", "blackhole", f"{NETWORK}.0/24")


def _write_client_files(fleet: Fleet) -> None:
    """authorized_keys (the client key, for every login), known_hosts (every host's key) and ssh_config."""
    root = fleet.root
    public = (root / "client_key.pub").read_text()
    (root / "authorized_keys").write_text(public)
    (root / "authorized_keys").chmod(0o644)
    known = []
    for host in fleet.hosts.values():
        key = (host.root / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        known.append(f"{host.address} {' '.join(key)}")
    (root / "known_hosts").write_text("\n".join(known) + "\n")
    entries = []
    for host in fleet.hosts.values():
        entries.append((host.alias, host.address, "root"))
        if fleet.user is not None:
            entries.append((f"{host.alias}-user", host.address, fleet.user.name))
    for offset, alias in enumerate(fleet.unreachable):
        entries.append((alias, f"{NETWORK}.{UNREACHABLE_FIRST + offset}", "root"))
    lines = []
    for alias, address, user in entries:
        lines += [f"Host {alias}", f"    HostName {address}", f"    User {user}", ""]
    lines += [
        "Host *",
        "    Port 22",
        f"    IdentityFile {root / 'client_key'}",
        "    IdentitiesOnly yes",
        "    IdentityAgent none",
        f"    UserKnownHostsFile {root / 'known_hosts'}",
        "    GlobalKnownHostsFile /dev/null",
        "    StrictHostKeyChecking yes",
        "    UpdateHostKeys no",
        "    BatchMode yes",
        "    ConnectTimeout 10",
        "    PasswordAuthentication no",
        "    KbdInteractiveAuthentication no",
        "    LogLevel ERROR",
        "",
    ]
    fleet.ssh_config.write_text("\n".join(lines))


def _sshd_config(fleet: Fleet, host: FleetHost) -> str:
    users = ["root", *([fleet.user.name] if fleet.user is not None else [])]
    return "\n".join(
        [
            f"ListenAddress {host.address}",
            "Port 22",
            f"HostKey {host.root / 'ssh_host_ed25519_key'}",
            f"PidFile {host.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {fleet.root / 'authorized_keys'}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {' '.join(users)}",
            "UsePAM no",
            "StrictModes no",  # the key file lives under /tmp (mode 1777), which strict modes refuse
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxSessions 50",
            "MaxStartups 100",
            f"SetEnv DOCKER_HOST={host.docker_host} PORTSCOPE_STATE_DIR={host.state_dir} PATH={host.path}",
            "",
        ]
    )


def _start_sshds(fleet: Fleet) -> None:
    if not PRIVSEP_DIR.exists():
        PRIVSEP_DIR.mkdir(mode=0o755)
        PRIVSEP_MARK.touch()
    for host in fleet.hosts.values():
        config = host.root / "sshd_config"
        config.write_text(_sshd_config(fleet, host))
        log = open(host.root / "sshd.log", "wb")  # noqa: SIM115  (sshd writes to it for its whole life)
        with log:
            host.sshd = subprocess.Popen(
                host.ns.argv([SSHD, "-D", "-e", "-f", str(config)]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
    _write_state(fleet)
    for host in fleet.hosts.values():
        if not wait_for(lambda h=host: _sshd_ready(h), timeout=30, interval=0.1):
            raise RuntimeError(f"sshd on {host.alias} not ready:\n{daemon.log_tail(host.root / 'sshd.log')}")


def _sshd_ready(host: FleetHost) -> bool:
    assert host.sshd is not None
    if host.sshd.poll() is not None:
        raise RuntimeError(f"sshd on {host.alias} exited:\n{daemon.log_tail(host.root / 'sshd.log')}")
    return (host.root / "sshd.pid").exists()


def _teardown(fleet: Fleet) -> list[str]:
    notes: list[str] = []
    sshds = [h.sshd for h in fleet.hosts.values() if h.sshd is not None and h.sshd.poll() is None]
    procs = daemon.processes_of(fleet.client_ns, fleet.root)  # the sshds, their sessions, the clients
    for host in fleet.hosts.values():
        if host.engine is None:
            procs += daemon.processes_of(host.ns, host.root)
    if procs:
        daemon.terminate(procs, grace=10, notes=notes, what="fleet processes")
    for proc in sshds:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    for host in fleet.hosts.values():
        if host.engine is not None:
            notes += stop_engine(host.engine)
        else:
            netns.delete(host.ns)
    _remove_sudoers(fleet.sudoers, notes)
    if fleet.user is not None:
        _remove_user(fleet.user, notes)
    daemon.remove_root(fleet.client_ns, fleet.root, notes)
    _release_privsep_dir()
    return notes


def _release_privsep_dir() -> None:
    """Remove /run/sshd if a fleet made it and no other fleet (of any process) is still there."""
    stale = {root for root, _ in daemon.stale_roots(TMP_PREFIX, _LIVE)}
    others = [root for root in Path("/tmp").glob(f"{TMP_PREFIX}*") if root not in stale]
    if PRIVSEP_MARK.exists() and not others:
        with contextlib.suppress(OSError):
            PRIVSEP_MARK.unlink()
            PRIVSEP_DIR.rmdir()


# --------------------------------------------------------------------------- safety nets


def stop_all() -> None:
    """Stop every fleet this process started and has not stopped yet."""
    _LIVE.stop_all()


def reap_stale() -> list[str]:
    """Tear down fleets left by a test process that died without cleaning up (owner pid gone); their engines
    are reaped by engine.reap_stale."""
    reaped = []
    for root, state in daemon.stale_roots(TMP_PREFIX, _LIVE):
        notes: list[str] = []
        client = NetNs(state.get("client_ns", f"{root.name}-c"))
        for name in state.get("host_ns", []):
            procs = daemon.processes_of(NetNs(name), root)
            daemon.terminate(procs, grace=5, notes=notes, what="stale sshd")
            if name.startswith(root.name):
                netns.delete(NetNs(name))
        daemon.end_processes(client, root, notes)
        _remove_sudoers(sudoers_path(root), notes)
        if state.get("user"):
            user = LoginUser(**state["user"])
            _remove_user(user, notes)
        daemon.remove_root(client, root, notes)
        reaped.append(root.name)
    for path in SUDOERS_DIR.glob(f"{SUDOERS_PREFIX}*"):  # a drop-in whose fleet's temp dir is already gone
        if not Path("/tmp", path.name.removeprefix(SUDOERS_PREFIX)).exists():
            _remove_sudoers(path, [])
            reaped.append(path.name)
    if reaped:
        _release_privsep_dir()
    return reaped


def _write_state(fleet: Fleet) -> None:
    daemon.write_state(
        fleet.root,
        client_ns=fleet.client_ns.name,
        host_ns=[h.ns.name for h in fleet.hosts.values()],
        user={"name": fleet.user.name, "uid": fleet.user.uid, "gid": fleet.user.gid, "home": fleet.user.home}
        if fleet.user is not None
        else None,
    )


# --------------------------------------------------------------------------- sudo for the non-root user


def sudoers_path(root: Path) -> Path:
    """The sudoers drop-in of the fleet whose temp dir is `root`."""
    return SUDOERS_DIR / f"{SUDOERS_PREFIX}{root.name}"


def sudo_python() -> str:
    """The python3 that `sudo python3` runs: the first on Debian's secure_path (the standard folders)."""
    found = shutil.which("python3", path=os.pathsep.join(STANDARD_PATH))
    if found is None:
        raise RuntimeError("no python3 in the standard folders for sudo to run")
    return found


def sudoers_text(user: str, python: str) -> str:
    """The drop-in: `user` may run `python` (any arguments) as root without a password, keeping
    PORTSCOPE_STATE_DIR; nothing else."""
    return (
        "# portscope tests (tests/sandbox/ssh_hosts.py): removed with the fleet\n"
        f'Defaults:{user} env_keep += "PORTSCOPE_STATE_DIR"\n'
        f"{user} ALL=(root) NOPASSWD: {python}\n"
    )


def grant_sudo(fleet: Fleet) -> Path:
    """Let the fleet's non-root user run `sudo -n python3` (sudoers_text): written 0440 beside its place under
    a name sudo skips, checked with `visudo -cf`, then renamed into place. Returns the drop-in's path."""
    if fleet.user is None:
        raise ValueError("the fleet has no non-root user (start it with login_user=True)")
    if not SUDOERS_DIR.is_dir():
        raise RuntimeError(f"{SUDOERS_DIR} is missing: install sudo")
    final = fleet.sudoers
    staged = SUDOERS_DIR / f".{final.name}.new"  # a name with a '.': sudo's includedir ignores it
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o440)
    with os.fdopen(fd, "w") as f:
        f.write(sudoers_text(fleet.user.name, sudo_python()))
    os.chmod(staged, 0o440)
    check = subprocess.run([VISUDO, "-cf", str(staged)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        staged.unlink()
        raise RuntimeError(f"visudo -cf refused the drop-in: {(check.stdout + check.stderr).strip()}")
    os.replace(staged, final)
    return final


def revoke_sudo(fleet: Fleet) -> None:
    """Remove the grant of `grant_sudo` (nothing when there is none)."""
    notes: list[str] = []
    _remove_sudoers(fleet.sudoers, notes)
    if notes:
        raise RuntimeError("; ".join(notes))


@contextlib.contextmanager
def sudo_granted(fleet: Fleet) -> Iterator[Path]:
    """`grant_sudo` for the duration of the block."""
    path = grant_sudo(fleet)
    try:
        yield path
    finally:
        revoke_sudo(fleet)


def _remove_sudoers(path: Path, notes: list[str]) -> None:
    for leftover in (path, path.with_name(f".{path.name}.new")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError as exc:
            notes.append(f"cannot remove {leftover}: {exc.strerror}")


# --------------------------------------------------------------------------- user, keys, links


def _add_user(root: Path) -> LoginUser:
    """A system user with a shell (sshd runs commands through it), no password and a home under `root`."""
    name = "psfl" + root.name.removeprefix(TMP_PREFIX).lower()[:8]
    home = root / "home"
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh",
         "--password", "*", name],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"useradd {name}: {proc.stderr.strip()}")
    entry = pwd.getpwnam(name)
    user = LoginUser(name, entry.pw_uid, entry.pw_gid, str(home))
    home.mkdir(mode=0o755)
    os.chown(home, user.uid, user.gid)
    return user


def _remove_user(user: LoginUser, notes: list[str]) -> None:
    """End the user's processes and remove the user (only if the name still has the uid that was made)."""
    procs = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.uids().real == user.uid:
                procs.append(proc)
    if procs:
        daemon.terminate(procs, grace=5, notes=notes, what=f"processes of {user.name}")
    with contextlib.suppress(KeyError):
        if pwd.getpwnam(user.name).pw_uid == user.uid:
            proc = subprocess.run(["userdel", user.name], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                notes.append(f"userdel {user.name}: {proc.stderr.strip()}")


def _ssh_keygen(path: Path) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _ip(ns: NetNs, *args: str) -> None:
    proc = subprocess.run(["ip", "-n", ns.name, *args], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ip -n {ns.name} {' '.join(args)}: {proc.stderr.strip()}")


def leftovers(fleet: Fleet) -> list[str]:
    """What is still there after `stop_fleet`: namespaces, the temp dir, the sudoers drop-in, the user, processes
    naming the dir."""
    found = [ns.name for ns in (fleet.client_ns, *(h.ns for h in fleet.hosts.values())) if ns.inode() is not None]
    if fleet.root.exists():
        found.append(str(fleet.root))
    if fleet.sudoers.exists():
        found.append(str(fleet.sudoers))
    if fleet.user is not None:
        with contextlib.suppress(KeyError):
            found.append(f"user {pwd.getpwnam(fleet.user.name).pw_name}")
    found += [f"pid {p.pid}" for p in daemon.processes_of(NetNs("-none-"), fleet.root)]
    return found
