"""Where a binding's traffic goes: a running container's address on a bridge the host routes to, or a plain IP."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from portscope.core.model import Container, Family, HostFacts
from portscope.core.publish.errors import InputError


@dataclass(frozen=True, slots=True)
class Target:
    ip: str
    bridge: str | None = None  # the host interface whose network holds `ip`
    container_id: str | None = None
    container_name: str | None = None


def find_container(containers: Iterable[Container], ref: str) -> Container | None:
    """By exact name, else by full id, else by a unique id prefix; InputError when a prefix is ambiguous."""
    items = list(containers)
    for c in items:
        if c.name == ref.lstrip("/") or c.id == ref:
            return c
    matches = [c for c in items if c.id.startswith(ref)] if all(ch in "0123456789abcdef" for ch in ref) else []
    if len(matches) > 1:
        raise InputError(f"container id prefix {ref!r} matches {len(matches)} containers: give more of the id")
    return matches[0] if matches else None


def container_address(c: Container, family: Family) -> str | None:
    """The container's address of `family` on its first network that has one."""
    for net in c.networks:
        ip = net.ipv4 if family == "ipv4" else net.ipv6
        if ip:
            return ip
    return None


def container_target(c: Container, family: Family, host: HostFacts) -> Target:
    """The running container's address, or InputError saying why it cannot be a target."""
    mode = c.network_mode or ""
    if mode == "host":
        raise InputError(
            f"container {c.name} uses --network host: its ports are the host's already, nothing to publish"
        )
    if c.state != "running":
        raise InputError(f"container {c.name} is {c.state or 'not running'}: start it first (docker start {c.name})")
    if mode == "none" or mode.startswith("container:"):
        raise InputError(
            f"container {c.name} has no address of its own (--network {mode}): publish its network's owner"
        )
    ip = container_address(c, family)
    if ip is None:
        other = "IPv4" if family == "ipv6" else "IPv6"
        if container_address(c, "ipv6" if family == "ipv4" else "ipv4"):
            raise InputError(f"container {c.name} has only an {other} address: use an {other} host address (or none)")
        raise InputError(f"container {c.name} has no IP address on any network: connect it to a bridge network")
    bridge = bridge_for(ip, host)
    if bridge is None:
        raise InputError(
            f"container {c.name}'s address {ip} is on no network this host routes to (macvlan/ipvlan?): "
            "attach it to a bridge network"
        )
    return Target(ip=ip, bridge=bridge, container_id=c.id, container_name=c.name)


def bridge_for(ip: str, host: HostFacts) -> str | None:
    """The host interface whose subnet holds `ip` (the most specific one), if any."""
    addr = ipaddress.ip_address(ip)
    best: tuple[int, str] | None = None
    for iface, cidr in host.networks:
        net = ipaddress.ip_interface(cidr).network
        inside = net.version == addr.version and addr in net and net.prefixlen < net.max_prefixlen
        if inside and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, iface)
    return best[1] if best else None
