"""Facts about the host that explain bindings: name, kernel, addresses and port ranges."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable

import psutil

from portscope.core.model import HostFacts, PortRange

PORT_RANGE_FILE = "sys/net/ipv4/ip_local_port_range"
RESERVED_PORTS_FILE = "sys/net/ipv4/ip_local_reserved_ports"


def read_host_facts(proc: str = "/proc") -> HostFacts:
    """Hostname, kernel release, root-ness, interface addresses and the kernel's port ranges.

    `proc` is where procfs is mounted; files that are missing, unreadable or
    malformed give None / ().
    """
    return host_facts_from(
        hostname=socket.gethostname(),
        kernel=os.uname().release,
        is_root=os.geteuid() == 0,
        port_range=_read_text(os.path.join(proc, PORT_RANGE_FILE)),
        reserved_ports=_read_text(os.path.join(proc, RESERVED_PORTS_FILE)),
        networks=read_networks(),
        route_localnet=read_route_localnet(proc),
    )


def host_facts_from(
    *,
    hostname: str,
    kernel: str,
    is_root: bool,
    port_range: str | None,
    reserved_ports: str | None,
    networks: tuple[tuple[str, str], ...],
    route_localnet: tuple[str, ...],
) -> HostFacts:
    """HostFacts from what was read (here or on another host): the port range files' text (None: unreadable)."""
    return HostFacts(
        hostname=hostname,
        kernel=kernel,
        is_root=is_root,
        addresses=tuple(sorted({cidr.split("/")[0] for _, cidr in networks}, key=_address_order)),
        ephemeral_range=parse_port_range(port_range) if port_range is not None else None,
        reserved_ports=parse_reserved_ports(reserved_ports) if reserved_ports is not None else (),
        networks=networks,
        route_localnet=route_localnet,
    )


def _address_order(text: str) -> tuple[int, bytes]:
    a = ipaddress.ip_address(text)
    return (a.version, a.packed)


def read_networks() -> tuple[tuple[str, str], ...]:
    """(interface, CIDR) of every IPv4/IPv6 address on the host's interfaces, sorted."""
    try:
        ifaces = psutil.net_if_addrs()
    except (psutil.Error, OSError):
        return ()
    return networks_from(
        (name, addr.address, _prefix(addr.netmask))
        for name, addrs in ifaces.items()
        for addr in addrs
        if addr.family in (socket.AF_INET, socket.AF_INET6)
    )


def networks_from(addresses: Iterable[tuple[str, str, int | str]]) -> tuple[tuple[str, str], ...]:
    """(interface, CIDR), sorted and each once, from (interface, address, prefix length); a `%zone` suffix is
    dropped and what is not an address skipped."""
    found = set()
    for name, address, prefix in addresses:
        try:
            iface = ipaddress.ip_interface(f"{address.partition('%')[0]}/{prefix}")
        except ValueError:
            continue
        found.add((name, str(iface)))
    return tuple(sorted(found))


def _prefix(netmask: str | None) -> int | str:
    """A netmask as a prefix length: psutil gives IPv6 masks as `ffff:ffff::`, which ipaddress refuses."""
    if not netmask:
        return ""
    if ":" in netmask:
        return bin(int(ipaddress.IPv6Address(netmask))).count("1")
    return netmask


def read_route_localnet(proc: str = "/proc") -> tuple[str, ...]:
    """Interfaces whose net.ipv4.conf.IF.route_localnet is 1 (`all` and `default` included)."""
    folder = os.path.join(proc, "sys/net/ipv4/conf")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return ()
    return tuple(n for n in names if (_read_text(os.path.join(folder, n, "route_localnet")) or "").strip() == "1")


def parse_port_range(text: str) -> PortRange | None:
    """`ip_local_port_range` ("32768\\t60999\\n") as a PortRange; None when malformed."""
    parts = text.split()
    if len(parts) != 2:
        return None
    first, last = (_port(p) for p in parts)
    if first is None or last is None or first > last:
        return None
    return PortRange(first, last)


def parse_reserved_ports(text: str) -> tuple[PortRange, ...]:
    """`ip_local_reserved_ports` ("8080,9000-9010\\n", or an empty line) as PortRanges.

    () when empty or malformed: a half-understood list is not reported.
    """
    text = text.strip()
    if not text:
        return ()
    ranges: list[PortRange] = []
    for item in text.split(","):
        first_text, dash, last_text = item.strip().partition("-")
        first = _port(first_text)
        last = _port(last_text) if dash else first
        if first is None or last is None or first > last:
            return ()
        ranges.append(PortRange(first, last))
    return tuple(ranges)


def _port(text: str) -> int | None:
    """A decimal port number 0-65535, or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        return None
    value = int(text)
    return value if value <= 65535 else None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None
