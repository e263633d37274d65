"""A network namespace that is created for a test and deleted afterwards, even on failure."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class NetNs:
    """A named network namespace under /run/netns."""

    name: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def inode(self) -> int | None:
        """The namespace's inode (what `/proc/PID/ns/net` of its processes points to), or None if gone."""
        try:
            return os.stat(self.path).st_ino
        except OSError:
            return None

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` wrapped to run inside this namespace (nsenter keeps /sys, unlike `ip netns exec`)."""
        return ["nsenter", f"--net={self.path}", *argv]

    def run(self, argv: Sequence[str], *, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the namespace and return its output as text."""
        kwargs.setdefault("capture_output", True)
        return subprocess.run(self.argv(argv), check=check, text=True, **kwargs)


def create(prefix: str = "pst", *, name: str | None = None) -> NetNs:
    """Create a namespace (named `name`, else `prefix`-random) with `lo` up; the caller must `delete` it."""
    ns = NetNs(name or f"{prefix}-{uuid.uuid4().hex[:8]}")
    subprocess.run(["ip", "netns", "add", ns.name], check=True)
    try:
        subprocess.run(["ip", "-n", ns.name, "link", "set", "lo", "up"], check=True)
    except BaseException:
        delete(ns)
        raise
    return ns


def delete(ns: NetNs) -> None:
    """Delete the namespace; its veths and rules go with it."""
    if os.path.exists(ns.path):
        subprocess.run(["ip", "netns", "del", ns.name], check=False)


@contextlib.contextmanager
def netns(prefix: str = "pst") -> Iterator[NetNs]:
    """A fresh namespace for the duration of the block."""
    ns = create(prefix)
    try:
        yield ns
    finally:
        delete(ns)


def add_host_address(ns: NetNs, cidr: str = "10.254.0.1/24", ifname: str = "pshost0") -> None:
    """Give the namespace an address besides loopback, as every real host has (on an empty bridge: no
    traffic goes anywhere). Without one, no packet the host sends to itself reaches a rule that leaves
    out 127.0.0.0/8 (Docker's OUTPUT jump), and portscope says so."""
    subprocess.run(["ip", "-n", ns.name, "link", "add", ifname, "type", "bridge"], check=True)
    subprocess.run(["ip", "-n", ns.name, "addr", "add", cidr, "dev", ifname], check=True)
    subprocess.run(["ip", "-n", ns.name, "link", "set", ifname, "up"], check=True)
