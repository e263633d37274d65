"""nf_tables change notifications: `nft monitor` prints a line for every rule, chain, set or table change.

They cover native nftables and iptables-nft alike (both write through nf_tables). Between changes the
process sleeps in the kernel; its one cost is loading the ruleset once when it starts.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from portscope.core.tools import which


class NftEvents:
    """Runs `nft monitor` and calls `on_change()` for each line it prints, from the caller's thread (`follow`)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.stopped = False

    def start(self) -> str | None:
        """Start the monitor; a one-line reason when nf_tables changes cannot be followed."""
        nft = which("nft")
        if nft is None:
            return "nft not found: nf_tables rule changes are seen by the periodic full read only (install nftables)"
        try:
            self._process = subprocess.Popen(
                [nft, "monitor"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        except OSError as exc:
            return f"cannot run nft monitor: {exc.strerror}"
        return None

    def follow(self, on_change: Callable[[], None]) -> str | None:
        """Block, calling `on_change` per change, until the monitor ends; why it ended (None: stopped)."""
        process = self._process
        if process is None or process.stdout is None:
            return "nft monitor is not running"
        for line in process.stdout:
            if line.strip():
                on_change()
        process.wait()
        return None if self.stopped else f"nft monitor ended (exit {process.returncode})"

    def stop(self) -> None:
        self.stopped = True
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
