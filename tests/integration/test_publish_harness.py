"""Helpers for the publish integration tests (this module holds no tests).

`Portscope` runs the CLI (or a snippet of the Python API) inside the engine's namespace with a
private state directory, and checks around every command that Docker's own chains are untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.sandbox.client import Client, tcp_get, udp_ask
from tests.sandbox.engine import IMAGE, REPO_ROOT, Engine, wait_for

HOST_PYTHON = "/usr/bin/python3"
UDP_ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 53))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(65536)\n"
    "    s.sendto(b'pong:' + data, peer)\n"
)
_COUNTERS = re.compile(r"\[\d+:\d+\]")
_OURS = re.compile(r"PORTSCOPE")


def normalized(save: str) -> str:
    """An iptables-save dump without comments (dates) and counters."""
    lines = [_COUNTERS.sub("[0:0]", line) for line in save.splitlines() if not line.startswith("#")]
    return "\n".join(lines) + "\n"


def docker_lines(save: str) -> list[str]:
    """Every line of the nat and filter tables that is not portscope's (Docker 20.10 uses no other table):
    others' chains and rules, with ours and the jumps into ours left out."""
    out, table = [], ""
    for line in normalized(save).splitlines():
        if line.startswith("*"):
            table = line
        if table not in ("*nat", "*filter") or _OURS.search(line):
            continue
        out.append(f"{table} {line}")
    return out


def ours(save: str) -> list[str]:
    return [line for line in normalized(save).splitlines() if _OURS.search(line)]


@dataclass
class Portscope:
    """portscope inside one engine's namespace, with its own state directory."""

    engine: Engine
    state_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="psstate-"))
    check_docker_chains: bool = True

    def env(self, **extra: str) -> dict[str, str]:
        env = self.engine.env()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PORTSCOPE_STATE_DIR"] = self.state_dir
        env.update(extra)
        return env

    def save(self) -> str:
        """iptables-save (IPv4) of the set-up's flavour."""
        return self.engine.iptables_save()

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        """`portscope ARGS`; asserts Docker's chains are the same before and after."""
        before = docker_lines(self.save()) if self.check_docker_chains else None
        proc = self.engine.ns.run(
            [sys.executable, "-m", "portscope", *args], check=False, cwd=REPO_ROOT, env=self.env(**env), timeout=timeout
        )
        if before is not None:
            assert docker_lines(self.save()) == before, f"portscope {' '.join(args)} changed Docker's rules"
        return proc

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, f"portscope {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}"
        return proc.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        argv = self.engine.ns.argv([sys.executable, "-m", "portscope", *args])
        return subprocess.Popen(
            argv, cwd=REPO_ROOT, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def api(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run a Python snippet (with the repo importable) inside the namespace."""
        return self.engine.ns.run([sys.executable, "-c", code], check=False, cwd=REPO_ROOT, env=self.env(), timeout=120)

    def clean_up(self) -> None:
        """Remove every rule of portscope's from the namespace, and the state directory."""
        self.api(
            "from portscope.core.publish.backend import detect_backend\n"
            "from portscope.core.publish.commit import commit\n"
            "commit(detect_backend(), {})"
        )
        self.engine.ns.run(["nft", "delete", "table", "bridge", "portscope"], check=False)  # the guard's table
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def binding_id(self, stdout: str) -> str:
        match = re.search(r"\b(ps-[0-9a-f]{8})\b", stdout)
        assert match, stdout
        return match.group(1)

    def host_port(self, stdout: str) -> int:
        match = re.search(r":(\d+)/(?:tcp|udp|sctp)", stdout)
        assert match, stdout
        return int(match.group(1))


def container_ip(engine: Engine, name: str) -> str:
    (obj,) = engine.inspect(name)
    (net,) = obj["NetworkSettings"]["Networks"].values()
    return net["IPAddress"]


def run_web(engine: Engine, name: str, *docker_args: str) -> str:
    """A busybox httpd serving `hello from NAME` on port 80; returns its IP once it answers."""
    cmd = f"echo 'hello from {name}' > /www/index.html && exec httpd -f -p 80 -h /www"
    engine.run_container(name, *docker_args, IMAGE, "sh", "-c", cmd)
    ip = container_ip(engine, name)
    assert wait_for(lambda: tcp_get(engine.ns, ip, 80, timeout=2), timeout=30), f"{name} never answered"
    return ip


def run_udp_echo(engine: Engine, name: str) -> str:
    """A UDP echo on port 53 (the host's python3, mounted read-only); returns its IP once it answers."""
    engine.run_container(name, "-v", "/usr:/usr:ro", IMAGE, HOST_PYTHON, "-c", UDP_ECHO)
    ip = container_ip(engine, name)
    assert wait_for(lambda: udp_ask(engine.ns, ip, 53, "ready", timeout=1), timeout=30), f"{name}: no UDP echo"
    return ip


def serves(client: Client, port: int, name: str, *, host: str | None = None) -> bool:
    """The client gets `hello from NAME` from host:port (waiting a bounded time for it)."""
    target = host or client.engine_ip
    answer = wait_for(lambda: client.tcp_get(target, port, timeout=2), timeout=20)
    return answer is not None and f"hello from {name}" in answer


def refused(client: Client, port: int) -> bool:
    """The client gets no answer from the engine's address on `port` (waiting a bounded time for that)."""
    return bool(wait_for(lambda: client.tcp_get(client.engine_ip, port, timeout=1) is None, timeout=20))


def remove_containers(engine: Engine, *names: str) -> None:
    engine.docker("rm", "-f", *names, check=False)
    for name in names:
        if name in engine.containers:
            engine.containers.remove(name)


def state_path(ps: Portscope) -> Path:
    return Path(ps.state_dir)


@contextlib.contextmanager
def session(engine: Engine, *containers: str) -> Iterator[Portscope]:
    """Portscope on `engine` for a module's tests; afterwards its rules, its state and `containers` are gone."""
    ps = Portscope(engine)
    try:
        yield ps
    finally:
        ps.clean_up()
        remove_containers(engine, *containers)
        assert ours(ps.save()) == [], "portscope's rules are left behind"


def next_line(watcher: subprocess.Popen[str], marker: str, *, stderr: bool = False) -> str:
    """The watcher's next line on stdout (or stderr) that holds `marker`; "" once the stream ends."""
    stream = watcher.stderr if stderr else watcher.stdout
    assert stream is not None
    line = stream.readline()
    while line and marker not in line:
        line = stream.readline()
    return line


def next_summary(watcher: subprocess.Popen[str]) -> str:
    """The watcher's next reconcile summary on stdout (its other lines are per-binding details)."""
    return next_line(watcher, "binding(s)")


def stop_watcher(watcher: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM the watcher; it exits 0. Returns the rest of its stdout and stderr."""
    watcher.send_signal(signal.SIGTERM)
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    return out, err
