"""portscope's systemd unit: its text, where it lives, and installing or removing it with systemctl.

The unit runs `portscope apply` (ExecStartPre) once the engine is up, then `portscope watch`
(ExecStart). Its first line marks it as portscope's: a unit without that line is someone else's
and is never replaced or removed. `root` is the system to act on, as `systemctl --root` takes it:
"/" (this host) unless a test or an image build says otherwise. Every failure is a `ServiceError`
or `NotRootError` with one line saying what to do; nothing is left half-done.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field

from portscope.core.errors import NotRootError, PortscopeError

UNIT = "portscope.service"
UNIT_DIR = "etc/systemd/system"  # under `root`
PODMAN_UNIT_DIRS = ("lib/systemd/system", "usr/lib/systemd/system")  # under `root`
MARKER = "# portscope.service: written by `portscope service install`; `portscope service uninstall` removes it."
#: What a command path in the unit may hold: no space, quote, `%` specifier, `$` variable or backslash,
#: so that systemd reads it back as exactly this path.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+/-]+")
_MAX_UNIT_BYTES = 1 << 20

_TEMPLATE = """{marker}
# Re-creates portscope's bindings at boot once the engine is up (`portscope apply`), then follows the
# containers (`portscope watch`). Local changes: `systemctl edit portscope.service`.
[Unit]
Description=portscope: re-create published ports at boot, then follow the containers
Wants=docker.service
After={after}

[Service]
Type=exec
ExecStartPre={command} apply
ExecStart={command} watch
Restart=on-failure
RestartSec=5s
StateDirectory=portscope
StateDirectoryMode=0700
UMask=0077
# It writes netfilter rules (CAP_NET_ADMIN, CAP_NET_RAW), /var/lib/portscope, /run/xtables.lock
# and /proc/sys/net/ipv4/conf/*/route_localnet (hence no ProtectKernelTunables); nothing else.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/run
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""


class ServiceError(PortscopeError):
    """The unit cannot be installed or removed as asked (exit 2): the message says what to do."""

    exit_code = 2


class SystemctlError(PortscopeError):
    """systemctl refused a step (exit 1); what was changed before it has been undone where it can be."""

    exit_code = 1


@dataclass(slots=True, frozen=True)
class UnitFile:
    """What is at the unit's path: `text` when it is a regular file, `ours` when it has our marker."""

    path: str
    text: str | None
    ours: bool
    why_not: str = ""  # for a unit that is not ours: what it is


@dataclass(slots=True)
class Status:
    """`portscope service status`: whether the unit is installed, enabled and active, and what it runs."""

    unit: str
    installed: bool
    ours: bool
    enabled: str | None  # `systemctl is-enabled`, None without systemctl
    active: str | None  # `systemctl is-active`, None when systemd does not run this system
    runs: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "schema": "portscope.service/1",
            "unit": self.unit,
            "installed": self.installed,
            "ours": self.ours,
            "enabled": self.enabled,
            "active": self.active,
            "exec_start_pre": self.runs.get("ExecStartPre", []),
            "exec_start": self.runs.get("ExecStart", []),
        }


def unit_path(root: str = "/") -> str:
    return os.path.join(root, UNIT_DIR, UNIT)


def this_host(root: str) -> bool:
    return os.path.realpath(root) == "/"


def booted(root: str = "/") -> bool:
    """systemd runs this system (PID 1; sd_booted's test), and `root` is this system."""
    return this_host(root) and os.path.isdir("/run/systemd/system")


def installed_command(argv0: str, executable: str) -> str:
    """The absolute path of the installed `portscope` script: the one running (`argv0`), else the
    one beside the Python running (`python -m portscope` from a virtualenv)."""
    for candidate in (argv0, os.path.join(os.path.dirname(executable), "portscope")):
        if os.path.basename(candidate) == "portscope" and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return check_command(os.path.realpath(candidate))
    raise ServiceError(
        "cannot find the installed `portscope` command (this is python -m portscope without one): "
        "install portscope (`pip install .`) and run `portscope service install` with it"
    )


def check_command(path: str) -> str:
    """`path` as it may go into an Exec line: absolute and plain (letters, digits, `._+-/`)."""
    if not _PLAIN_PATH.fullmatch(path):
        raise ServiceError(
            f"the portscope command's path {path!r} holds characters a unit file would not keep as they are: "
            "install portscope under a plain path (letters, digits, . _ + - /)"
        )
    return path


def unit_text(command: str, podman: bool = False) -> str:
    """The whole unit for the portscope script at `command` (checked); with `podman` it also starts after
    Podman's API socket."""
    after = "docker.service podman.socket" if podman else "docker.service"
    return _TEMPLATE.format(marker=MARKER, command=check_command(command), after=after)


def has_podman(root: str = "/") -> bool:
    """True when the system under `root` has Podman's API socket unit (Debian's podman package ships it)."""
    return any(os.path.exists(os.path.join(root, d, "podman.socket")) for d in PODMAN_UNIT_DIRS)


def exec_lines(text: str) -> dict[str, list[str]]:
    """ExecStartPre/ExecStart of one of our units, each as its argument list (our unit never quotes)."""
    runs: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("ExecStartPre", "ExecStart"):
            runs[key] = value.split()
    return runs


def read_unit(root: str = "/") -> UnitFile | None:
    """What is at the unit's path, without following a symlink; None when nothing is."""
    path = unit_path(root)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        what = "masked (a link to /dev/null)" if target == "/dev/null" else f"a symbolic link to {target}"
        return UnitFile(path=path, text=None, ours=False, why_not=what)
    if not stat.S_ISREG(info.st_mode):
        return UnitFile(path=path, text=None, ours=False, why_not="not a regular file")
    if info.st_size > _MAX_UNIT_BYTES:
        return UnitFile(path=path, text=None, ours=False, why_not="not a unit portscope wrote (too large)")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    ours = text.startswith(MARKER + "\n")
    why_not = "" if ours else "not written by portscope (no portscope header)"
    return UnitFile(path=path, text=text, ours=ours, why_not=why_not)


def write_unit(path: str, text: str) -> None:
    """Write `text` to `path` atomically (a temp file beside it, fsync, rename, fsync the directory), 0644."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{UNIT}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(slots=True, frozen=True)
class Installed:
    """What `install` did: `changed` (the unit was written), `started` (systemd was told to start it)."""

    path: str
    changed: bool
    started: bool


def install(command: str, root: str = "/") -> Installed:
    """Write our unit for `command` and enable it (and start it when systemd runs this system).

    A unit that is not ours is refused before anything is written; when systemctl refuses to enable
    the unit, the previous file (or none) is put back.
    """
    _require_root("install", root)
    systemctl = _systemctl()
    text = unit_text(command, podman=has_podman(root))
    before = read_unit(root)
    if before is not None and not before.ours:
        raise ServiceError(f"{before.path} is {before.why_not}: move it away, then run `portscope service install`")
    path = unit_path(root)
    changed = before is None or before.text != text
    if changed:
        _write(path, text)
    live = booted(root)
    try:
        if live:
            _run(systemctl, "daemon-reload")
        _run(systemctl, *_root_args(root), "enable", UNIT)
    except SystemctlError:
        if changed:
            _undo_write(path, before)
            if live:
                subprocess.run([systemctl, "daemon-reload"], capture_output=True, check=False)
        raise
    if live:
        _run(systemctl, "restart" if changed and before is not None else "start", UNIT)  # an update takes effect
    return Installed(path, changed, live)


def uninstall(root: str = "/") -> str | None:
    """Stop, disable and remove our unit; the path removed, or None when none was installed."""
    _require_root("uninstall", root)
    before = read_unit(root)
    if before is None:
        return None
    if not before.ours:
        raise ServiceError(f"{before.path} is {before.why_not}: portscope leaves it alone; remove it yourself")
    systemctl = _systemctl()
    live = booted(root)
    _run(systemctl, *_root_args(root), "disable", *(["--now"] if live else []), UNIT)
    os.unlink(before.path)
    if live:
        _run(systemctl, "daemon-reload")
    return before.path


def status(root: str = "/") -> Status:
    """Whether the unit is installed (and ours), enabled and active, and what it runs; changes nothing."""
    unit = read_unit(root)
    systemctl = shutil.which("systemctl")
    enabled = active = None
    if systemctl is not None:
        enabled = _ask(systemctl, *_root_args(root), "is-enabled", UNIT) or "not-found"
        if booted(root):
            active = _ask(systemctl, "is-active", UNIT)
    runs = exec_lines(unit.text) if unit is not None and unit.ours and unit.text else {}
    return Status(
        unit=unit_path(root),
        installed=unit is not None,
        ours=unit is not None and unit.ours,
        enabled=enabled,
        active=active,
        runs=runs,
    )


def _require_root(verb: str, root: str) -> None:
    if this_host(root) and os.geteuid() != 0:
        raise NotRootError(f"`portscope service {verb}` changes /{UNIT_DIR}: run it as root (sudo)")


def _systemctl() -> str:
    path = shutil.which("systemctl")
    if path is None:
        raise ServiceError(
            "no systemctl on this host: portscope's service needs systemd; "
            "elsewhere run `portscope apply` and then `portscope watch` from the init system at boot"
        )
    return path


def _root_args(root: str) -> list[str]:
    return [] if this_host(root) else [f"--root={root}"]


def _run(systemctl: str, *args: str) -> None:
    proc = subprocess.run([systemctl, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise SystemctlError(
            f"systemctl {' '.join(args)} failed: {why} (see `systemctl status {UNIT}` and `journalctl -u {UNIT}`)"
        )


def _ask(systemctl: str, *args: str) -> str | None:
    """A systemctl query's one-word answer (it exits non-zero for "disabled", "inactive"...)."""
    proc = subprocess.run([systemctl, *args], capture_output=True, text=True, check=False)
    words = proc.stdout.split()
    return words[0] if words else None


def _write(path: str, text: str) -> None:
    try:
        write_unit(path, text)
    except OSError as exc:
        raise ServiceError(f"cannot write {path}: {exc.strerror} (check the path and permissions)") from None


def _undo_write(path: str, before: UnitFile | None) -> None:
    if before is None or before.text is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        write_unit(path, before.text)
