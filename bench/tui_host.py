"""A host for the live-view benches: a sandboxed engine's containers plus N Docker-shaped ports in a fresh
namespace, and the real TUI run there on a pseudo-terminal, as a user would run it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil

from bench.common import REPO_ROOT, fill, portscope_env
from tests.sandbox.engine import Engine
from tests.sandbox.netns import NetNs, netns

#: The engine flavour whose containers stand beside each backend's rules (native nftables: Docker 20.10
#: has no nftables backend, so its containers come from the iptables-nft engine).
ENGINE_FOR = {"iptables-nft": "iptables-nft", "iptables-legacy": "iptables-legacy", "nftables": "iptables-nft"}


@contextlib.contextmanager
def filled_host(backend: str, n: int, engine: Engine) -> Iterator[NetNs]:
    """A fresh namespace with the engine's own rules (iptables flavours) and `n` ports on `backend`."""
    with netns("pslive") as ns:
        baseline = None if backend == "nftables" else {f: engine.iptables_save(f) for f in (4, 6)}
        fill(ns, backend, n, baseline)
        yield ns


@dataclass
class TuiProcess:
    """`python -m portscope` (the TUI) on a pseudo-terminal in `ns`; its output is read and dropped."""

    ns: NetNs
    docker_host: str
    checkout: str | None = None  # another checkout (e.g. the baseline); None: this one
    args: tuple[str, ...] = ()
    size: tuple[int, int] = (120, 36)
    process: subprocess.Popen[bytes] | None = None
    _master: int = -1
    _reader: threading.Thread | None = None
    received: list[int] = field(default_factory=lambda: [0])

    def start(self) -> None:
        master, slave = pty.openpty()
        rows_cols = struct.pack("HHHH", self.size[1], self.size[0], 0, 0)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, rows_cols)
        env = portscope_env(self.docker_host)
        env["TERM"] = "xterm-256color"
        self.process = subprocess.Popen(
            self.ns.argv([sys.executable, "-m", "portscope", *self.args]),
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=self.checkout or REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            self.received[0] += len(data)

    def cpu_seconds(self) -> float:
        """User + system CPU of the app and every process under it, live or already reaped."""
        assert self.process is not None
        app = psutil.Process(self.process.pid)
        return sum(_cpu(p) for p in [app, *app.children(recursive=True)])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"q")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self._master)


def _cpu(process: psutil.Process) -> float:
    """User + system CPU of `process` and of its reaped children, in seconds; 0 if it is gone."""
    try:
        t = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system
