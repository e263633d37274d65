"""What every command reads first, under the lock: the backend, a live snapshot, and the wanted views."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from core.errors import EngineError, NotRootError
from core.model import Family, Snapshot
from core.publish.backend import Backend, detect_backend
from core.publish.commit import FAMILIES
from core.publish.render import Placed, render
from core.publish.saved import OurView

_IFACE = re.compile(r"[A-Za-z0-9_.@:-]{1,15}")


@dataclass(slots=True)
class World:
    backend: Backend
    snap: Snapshot

    def tables_present(self, family: Family) -> dict[str, set[str]]:
        return {
            t.name: set(t.chains) for t in self.snap.tables if t.backend == self.backend.name and t.family == family
        }

    def wanted(self, placed: list[Placed]) -> dict[Family, OurView]:
        return {f: render(placed, f, self.tables_present(f)) for f in FAMILIES}

    def require_engine(self) -> None:
        if not self.snap.engine.reachable:
            raise EngineError(f"cannot reach the container engine: {self.snap.engine.reason}")


def require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise NotRootError(f"`portscope {command}` reads and changes the firewall: run it as root (sudo)")


def read_world(docker_host: str | None = None) -> World:
    """Backend and live snapshot; refuses a backend portscope cannot write (native nftables)."""
    from core.live import read_live

    backend = detect_backend()
    backend.check_writable()
    snap = read_live(docker_host)
    return World(backend=backend, snap=snap)


def enable_route_localnet(bridge: str, proc: str = "/proc") -> bool:
    """Set net.ipv4.conf.BRIDGE.route_localnet=1 (needed to DNAT 127.0.0.1 to a container); True if changed."""
    if not _IFACE.fullmatch(bridge) or bridge in (".", ".."):
        raise ValueError(f"interface name {bridge!r}")
    path = os.path.join(proc, "sys/net/ipv4/conf", bridge, "route_localnet")
    with open(path, "r+", encoding="ascii") as f:
        if f.read().strip() == "1":
            return False
        f.seek(0)
        f.write("1\n")
    return True
