"""A process driven line by line over its stdin/stdout (the headless TUI drivers of tests and benches)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path


class LineDriver:
    """Starts `argv`; `ask(line)` writes a line and returns the next answer; `answer()` reads one more."""

    def __init__(self, argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str], bound: float = 300.0) -> None:
        self.bound = bound  # seconds an answer may take before the driver is taken as stuck
        self.process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def answer(self) -> str:
        """The next line the process prints ('' if it ends or says nothing within `bound` seconds)."""
        stdout = self.process.stdout
        assert stdout is not None
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.bound)
        return got[0].strip() if got else ""

    def ask(self, line: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.answer()

    def close(self) -> None:
        """Say `quit`, then wait (and kill a process that does not end)."""
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
