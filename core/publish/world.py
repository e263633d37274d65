"""What every command reads first, under the lock: the backend, a live snapshot, and the wanted views."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
from dataclasses import dataclass

import psutil

from core.errors import EngineError, NotRootError
from core.model import Family, HostFacts, Snapshot
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
    snap.host = with_ipv6(snap.host)
    return World(backend=backend, snap=snap)


def with_ipv6(host: HostFacts) -> HostFacts:
    """`host` with its IPv6 addresses and networks added (core.host drops those whose netmask psutil
    gives as `ffff:ffff::`, which `ipaddress` does not parse)."""
    extra = []
    try:
        ifaces = psutil.net_if_addrs()
    except (psutil.Error, OSError):
        return host
    for name, addrs in ifaces.items():
        for addr in addrs:
            if addr.family != socket.AF_INET6 or not addr.netmask:
                continue
            try:
                ip = ipaddress.IPv6Address(addr.address.partition("%")[0])
                prefix = bin(int(ipaddress.IPv6Address(addr.netmask))).count("1")
            except ValueError:
                continue
            extra.append((name, f"{ip}/{prefix}"))
    networks = tuple(sorted(set(host.networks) | set(extra)))
    addresses = tuple(dict.fromkeys([*host.addresses, *(cidr.split("/")[0] for _, cidr in extra)]))
    return dataclasses.replace(host, networks=networks, addresses=addresses)


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
