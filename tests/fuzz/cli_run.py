"""Run the portscope CLI as a bounded subprocess: 20 s, 2 GiB of address space, a private state dir.

Every fuzz case goes through `run_cli`, which also holds the promises every invocation keeps: no
Python traceback, no "internal error" (exit 1 from the catch-all), and an exit status from the
documented set. A timeout fails the test (it is a bound, not a timed assertion).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0
MEMORY = 2 << 30  # bytes of address space per invocation
MISSING_SOCKET = "unix:///nonexistent/portscope-fuzz/docker.sock"


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        head = f"portscope {' '.join(self.argv)!r}: exit {self.code}"
        return f"{head}\nstdout: {self.out[:2000]!r}\nstderr: {self.err[:2000]!r}"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_cli(argv: list[str], state_dir: Path, env: dict[str, str] | None = None, netns: str | None = None) -> Result:
    """`python -m portscope ARGV` from the checkout, bounded; its own state dir, an unreachable Docker.

    `netns`: run inside that network namespace (`nsenter`), so whatever it reads or writes of the
    firewall is a throwaway namespace's, never the host's."""
    environ = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(state_dir),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        "PORTSCOPE_STATE_DIR": str(state_dir),
        "DOCKER_HOST": MISSING_SOCKET,
        "COLUMNS": "400",
        **(env or {}),
    }
    command = [sys.executable, "-m", "portscope", *argv]
    if netns is not None:
        command = ["nsenter", f"--net=/run/netns/{netns}", *command]
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env=environ,
        capture_output=True,
        timeout=TIMEOUT,
        preexec_fn=_limit,
        stdin=subprocess.DEVNULL,
    )
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    return Result(tuple(argv), proc.returncode, out, err)


def assert_clean(result: Result, codes: set[int]) -> None:
    """A documented exit status, and no internal error or traceback on stderr."""
    assert "Traceback" not in result.err, str(result)
    assert "internal error" not in result.err, str(result)
    assert result.code >= 0, f"killed by signal {-result.code} (memory bound?)\n{result}"
    assert result.code in codes, str(result)


def fingerprint(*paths: Path, skip: frozenset[str] = frozenset({"lock"})) -> dict[str, tuple[int, bytes]]:
    """{path: (mode, content)} of every file under `paths` (the lock file aside): compare before and after."""
    out: dict[str, tuple[int, bytes]] = {}
    for top in paths:
        files = [top] if not top.is_dir() else sorted(p for p in top.rglob("*") if p.name not in skip)
        for p in files:
            if p.is_symlink():
                out[str(p)] = (0, os.readlink(p).encode())
            elif p.is_file():
                out[str(p)] = (p.stat().st_mode, p.read_bytes())
            elif p.exists():
                out[str(p)] = (p.stat().st_mode, b"")
    return out
