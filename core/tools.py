"""Run system tools with argument lists (never a shell), several at once, errors turned into text."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

#: Where system tools live; a non-root user's PATH often lacks the sbin directories.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])


@dataclass(slots=True, frozen=True)
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def reason(self) -> str:
        """One line explaining a failure, with what to do about it."""
        text = (self.stderr or self.stdout).strip().splitlines()
        first = text[-1] if text else f"exit status {self.returncode}"
        if self.returncode == 126 or "ermission denied" in first or "not permitted" in first:
            return f"{self.argv[0]}: permission denied (run portscope as root, e.g. with sudo)"
        return f"{self.argv[0]}: {first}"


def which(name: str) -> str | None:
    """The full path of a tool, also searching the sbin directories."""
    return shutil.which(name, path=_SEARCH_PATH)


class RunAll(Protocol):
    """`run_all`'s signature: what runs a stage of commands (this host's `run_all`, or another host's)."""

    def __call__(
        self,
        commands: Sequence[Sequence[str]],
        timeout: float = 10.0,
        readers: dict[tuple[str, ...], Callable[[Iterable[str]], str]] | None = None,
    ) -> list[ToolResult]: ...


def run_all(
    commands: Sequence[Sequence[str]],
    timeout: float = 10.0,
    readers: dict[tuple[str, ...], Callable[[Iterable[str]], str]] | None = None,
) -> list[ToolResult]:
    """Start every command at once and wait for all; a missing tool or a timeout becomes a failed result.

    Their outputs are read side by side (a thread each), so no tool waits with a full pipe for its turn.
    `readers`: for some commands, a function that consumes the output lines as they come and
    returns the whole text (so parsing overlaps with the tool still printing).
    """
    running: list[tuple[tuple[str, ...], subprocess.Popen[str] | None, str]] = []
    for argv in commands:
        argv = tuple(argv)
        try:
            started_now = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
            )
            running.append((argv, started_now, ""))
        except OSError as exc:
            running.append((argv, None, exc.strerror or str(exc)))

    def finish(argv: tuple[str, ...], proc: subprocess.Popen[str] | None, error: str) -> ToolResult:
        if proc is None:
            return ToolResult(argv=argv, returncode=127, stdout="", stderr=error)
        reader = readers.get(argv) if readers else None
        try:
            if reader is not None:
                return _read_streaming(argv, proc, reader, timeout)
            out, err = proc.communicate(timeout=timeout)
            return ToolResult(argv=argv, returncode=proc.returncode, stdout=out, stderr=err)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return ToolResult(argv=argv, returncode=124, stdout="", stderr=f"timed out after {timeout:g} s")

    if len(running) < 2:
        return [finish(*item) for item in running]
    with ThreadPoolExecutor(max_workers=len(running), thread_name_prefix="portscope-tool") as pool:
        return list(pool.map(lambda item: finish(*item), running))


def _read_streaming(
    argv: tuple[str, ...], proc: subprocess.Popen[str], reader: Callable[[Iterable[str]], str], timeout: float
) -> ToolResult:
    """Feed the output to `reader` line by line; a tool still running after `timeout` is killed."""
    expired: list[bool] = []

    def expire() -> None:
        expired.append(True)
        proc.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        out = reader(proc.stdout) if proc.stdout is not None else ""
        err = proc.stderr.read() if proc.stderr else ""
        proc.wait()
    finally:
        timer.cancel()
    if expired:
        raise subprocess.TimeoutExpired(argv, timeout)
    return ToolResult(argv=argv, returncode=proc.returncode, stdout=out, stderr=err)
