"""The long-running processes in the namespaces: a responder server per responder, a prober per side.

Each is a standard-library script started with `nsenter` (NetNs.argv) and fed through a pipe; each exits
when that pipe closes, so none outlives the harness even if the harness is killed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.sandbox.netns import NetNs

HERE = Path(__file__).resolve().parent
RESPONDER = HERE / "responder.py"
PROBER = HERE / "prober.py"


def _start(ns: NetNs, script: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ns.argv([sys.executable, str(script), *args]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a Ctrl-C reaches the harness only, which then stops these itself
    )


def start_responder(ns: NetNs, name: str, ports: Sequence[int]) -> subprocess.Popen[str]:
    """The responder server in `ns`, once every port is bound."""
    proc = _start(ns, RESPONDER, name, *map(str, ports))
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        stop(proc)
        raise RuntimeError(f"responder {name} in {ns.name} did not start")
    return proc


class Prober:
    """A side's prober: `send` a batch, then `receive` its answers (so several sides probe at once)."""

    def __init__(self, ns: NetNs) -> None:
        self.proc = _start(ns, PROBER)

    def send(self, probes: Sequence[tuple[str, str, str, int]], timeout: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"timeout": timeout, "probes": list(probes)}) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> list[str | None]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a prober exited")
        return json.loads(line)


def stop(proc: subprocess.Popen[str]) -> None:
    """Close its pipe (it exits), and make sure it has."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
