"""What the Docker and Podman sandboxes share: a daemon in a namespace and a temp dir, and its teardown.

A sandbox's temp dir holds a state file naming the test process that owns it; `Live` keeps the sandboxes this
process started and stops each once, shielded from Ctrl-C; `end_processes` and `remove_root` end everything
started for a sandbox, unmount what is left under its temp dir, delete its namespace and the dir. `stale_roots`
finds the temp dirs of a test process that died without tearing down.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import psutil

from tests.sandbox import netns
from tests.sandbox.netns import NetNs

STATE_FILE = "state.json"


class Sandbox(Protocol):
    """A daemon's sandbox: its namespace and temp dir, and whether it was torn down."""

    ns: NetNs
    root: Path
    stopped: bool


S = TypeVar("S", bound=Sandbox)


def iptables_binary(backend: str, family: int = 4, tool: str = "") -> str:
    """The iptables flavour of `backend`, e.g. `ip6tables-legacy-save` for family=6, tool="save"."""
    base = "iptables" if family == 4 else "ip6tables"
    return f"{base}-{backend}{f'-{tool}' if tool else ''}"


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a daemon's log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- live and stale sandboxes


class Live(Generic[S]):
    """The sandboxes of one kind this process started and has not stopped yet, by temp-dir name."""

    def __init__(self, teardown: Callable[[S], list[str]]) -> None:
        self._teardown = teardown
        self._live: dict[str, S] = {}
        self._lock = threading.Lock()

    def add(self, sandbox: S) -> None:
        with self._lock:
            self._live[sandbox.root.name] = sandbox

    def __contains__(self, name: str) -> bool:
        return name in self._live

    def stop(self, sandbox: S) -> list[str]:
        """Tear `sandbox` down unless it was, shielded from Ctrl-C; returns notes about anything that needed
        force or could not be removed."""
        with sigint_ignored():
            notes: list[str] = []
            if not sandbox.stopped:
                notes = self._teardown(sandbox)
                sandbox.stopped = True
            with self._lock:
                self._live.pop(sandbox.root.name, None)
            return notes

    def stop_all(self) -> None:
        """Stop every sandbox still live (at interpreter exit), saying on stderr what needed force."""
        with self._lock:
            sandboxes = list(self._live.values())
        for sandbox in sandboxes:
            notes = self.stop(sandbox)
            if notes:
                print(f"portscope sandbox: stopped {sandbox.ns.name} at exit: {'; '.join(notes)}", file=sys.stderr)


def write_state(root: Path, **fields: object) -> None:
    """The state file: this test process (to tell a live owner from a dead one) and `fields`."""
    state = {"owner": os.getpid(), "owner_started": psutil.Process().create_time(), **fields}
    (root / STATE_FILE).write_text(json.dumps(state))


def stale_roots(prefix: str, live: Live) -> Iterator[tuple[Path, dict]]:
    """Temp dirs /tmp/PREFIX* with a state file whose owner is gone, and their state."""
    for root in Path("/tmp").glob(f"{prefix}*"):
        try:
            state = json.loads((root / STATE_FILE).read_text())
        except (OSError, ValueError):
            continue
        if root.name not in live and not _owner_alive(state):
            yield root, state


def _owner_alive(state: dict) -> bool:
    try:
        owner = psutil.Process(int(state["owner"]))
        return abs(owner.create_time() - float(state["owner_started"])) < 1.0
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- safety nets

_sigterm_hooked = False


def install_exit_hooks(stop_all: Callable[[], None]) -> None:
    """Run `stop_all` at interpreter exit (once), and turn SIGTERM into KeyboardInterrupt so finalizers run."""
    global _sigterm_hooked
    atexit.unregister(stop_all)
    atexit.register(stop_all)
    if _sigterm_hooked:
        return
    _sigterm_hooked = True
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:

        def on_sigterm(signum: int, frame: object) -> None:
            raise KeyboardInterrupt("SIGTERM")

        signal.signal(signal.SIGTERM, on_sigterm)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C for the duration (main thread only), so a teardown is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- processes, mounts, namespace


def processes_of(ns: NetNs, root: Path) -> list[psutil.Process]:
    """Processes in namespace `ns` or whose command line mentions `root`, with all their descendants."""
    inode = ns.inode()
    me = os.getpid()
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            in_ns = inode is not None and os.stat(f"/proc/{proc.pid}/ns/net").st_ino == inode
            if in_ns or f"{root}/" in " ".join(proc.cmdline()):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
        except (psutil.Error, OSError):
            continue
    found.pop(me, None)
    return list(found.values())


def terminate(procs: Sequence[psutil.Process], *, grace: float, notes: list[str], what: str) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL whatever is left."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    if alive:
        notes.append(f"{what}: SIGKILL " + ", ".join(str(p.pid) for p in alive))
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=10)


def end_processes(ns: NetNs, root: Path, notes: list[str]) -> None:
    """End what is left in `ns` or names `root` once the daemon is gone."""
    leftovers = processes_of(ns, root)
    if leftovers:
        notes.append("leftover processes: " + ", ".join(f"{p.pid}:{_name(p)}" for p in leftovers))
        terminate(leftovers, grace=10, notes=notes, what="leftovers")


def remove_root(ns: NetNs, root: Path, notes: list[str], *, own_ns: bool = True) -> None:
    """Unmount what is left under `root`, delete the namespace (when `own_ns`) and then `root` itself."""
    unmount_under(root, notes)
    if own_ns:
        netns.delete(ns)
        if ns.inode() is not None:
            notes.append(f"namespace {ns.name} still exists")
    if mounts_under(root):
        notes.append(f"mounts remain under {root}; not removing it")
    else:
        shutil.rmtree(root, ignore_errors=True)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first."""
    prefix = str(root)
    points = []
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) < 2:
                continue
            point = _unescape_mount(fields[1])
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: (p.count("/"), len(p)), reverse=True)


def _unescape_mount(text: str) -> str:
    """Undo /proc/mounts octal escapes (`\\040` for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)


def unmount_under(root: Path, notes: list[str]) -> None:
    """Lazily unmount everything at or below `root`, deepest first."""
    for _ in range(3):
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        notes.append(f"unmounted {len(points)} leftover mount(s)")


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"
