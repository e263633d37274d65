"""Join DNAT bindings, docker-proxy processes and the engine's containers into one list of bindings."""

from __future__ import annotations

from collections.abc import Iterable

from portscope.core.model import Binding, Container, Family, Owner, PortMapping, Socket
from portscope.core.sockets import PORT_HOLDERS, ROOTLESS_CARRIERS

_ANY = {"ipv4": "0.0.0.0", "ipv6": "::"}


def _family_of(address: str) -> Family:
    return "ipv6" if ":" in address else "ipv4"


def _norm_host_ip(address: str, family: Family) -> str:
    """Docker and proxies write all-addresses as "", "0.0.0.0" or "::"; portscope uses "0.0.0.0" / "::"."""
    return _ANY[family] if address in ("", "0.0.0.0", "::") else address


def join(
    bindings: list[Binding], sockets: Iterable[Socket], containers: Iterable[Container], engine_owner: Owner = "docker"
) -> list[Binding]:
    """Add proxy carriers and socket evidence, container identities, and engine-reported bindings.

    Linear: every step is a dictionary look-up by binding key.
    """
    by_key: dict[tuple, Binding] | None = None  # built on the first proxy: most hosts have few or none
    out = list(bindings)
    holders: list[Socket] = []
    for sock in sockets:
        proxy = sock.proxy
        if proxy is None:
            if sock.process in PORT_HOLDERS:
                holders.append(sock)
            continue
        if by_key is None:
            by_key = {b.key: b for b in bindings}
        family = sock.family
        host_ip = _norm_host_ip(proxy.host_ip, family)
        key = (family, proxy.proto, host_ip, proxy.host_port, proxy.container_ip, proxy.container_port)
        binding = by_key.get(key)
        if binding is None:
            binding = Binding(
                family=family,
                protocol=proxy.proto,
                host_ip=host_ip,
                host_port=proxy.host_port,
                target_ip=proxy.container_ip,
                target_port=proxy.container_port,
                owner="docker",
            )
            by_key[key] = binding
            out.append(binding)
        if "proxy" not in binding.carriers:
            binding.carriers.append("proxy")
        binding.sockets.append(sock)
    _attach_containers(out, list(containers), engine_owner)
    _attach_holders(out, holders)
    out.sort(key=_sort_key)
    return out


def _attach_holders(out: list[Binding], holders: list[Socket]) -> None:
    """Add each Podman holder's socket to the bindings on its port and address (a wildcard covers every one).

    A rootless carrier (rootlessport, slirp4netns, pasta) carries the packets: "proxy". One that no rule or
    engine report names (the user's Podman socket was not read) is a binding of its own, its target unknown.
    """
    if not holders:
        return
    by_port: dict[tuple[str, int], list[Binding]] = {}
    for b in out:
        if b.host_port is not None:
            by_port.setdefault((b.protocol, b.host_port), []).append(b)
    for sock in holders:
        held = [b for b in by_port.get((sock.protocol, sock.port), ()) if _holds(sock, b)]
        carrier = sock.process in ROOTLESS_CARRIERS
        if not held and carrier:
            held = [Binding(family=sock.family, protocol=sock.protocol, host_ip=sock.address, host_port=sock.port,
                            target_ip="", target_port=None, owner="podman")]  # fmt: skip
            out.extend(held)
        for b in held:
            b.sockets.append(sock)
            if carrier and "proxy" not in b.carriers:
                b.carriers.append("proxy")


def _holds(sock: Socket, b: Binding) -> bool:
    """True when the socket is on the binding's address: the same, or a wildcard (`::` holds IPv4 too)."""
    wildcard = sock.address in ("0.0.0.0", "::")
    return (sock.family == b.family or sock.address == "::") and (wildcard or sock.address == b.host_ip)


def _attach_containers(out: list[Binding], containers: list[Container], engine_owner: Owner) -> None:
    """Name each binding's container by target IP, and add what the engine reports but nothing carries."""
    by_ip: dict[str, Container] = {}
    for c in containers:
        for net in c.networks:
            for ip in (net.ipv4, net.ipv6):
                if ip:
                    by_ip.setdefault(ip, c)
    if by_ip:
        for b in out:
            found = by_ip.get(b.target_ip)
            if found is not None:
                b.container_id, b.container_name, b.container_port = found.id, found.name, b.target_port
    if not any(c.in_force for c in containers):
        return
    by_host: dict[tuple, list[Binding]] = {}
    for b in out:
        by_host.setdefault((b.family, b.protocol, b.host_ip, b.host_port), []).append(b)
    for c in containers:
        for m in c.in_force:
            _mark_reported(out, by_host, c, m, engine_owner)


def _mark_reported(out: list[Binding], by_host: dict, c: Container, m: PortMapping, owner: Owner) -> None:
    if not m.host_port.isdigit():
        return
    family = _family_of(m.host_ip) if m.host_ip else "ipv4"
    host_ip = _norm_host_ip(m.host_ip, family)
    key = (family, m.protocol, host_ip, int(m.host_port))
    for b in by_host.get(key, ()):
        if b.container_id == c.id and b.target_port == m.container_port:
            b.reported_by_engine = True
            return
    target = _container_ip(c, family)
    b = Binding(
        family=family,
        protocol=m.protocol,
        host_ip=host_ip,
        host_port=int(m.host_port),
        target_ip=target or "",
        target_port=m.container_port,
        owner=owner,
        container_id=c.id,
        container_name=c.name,
        container_port=m.container_port,
        reported_by_engine=True,
    )
    by_host.setdefault(key, []).append(b)
    out.append(b)


def _container_ip(c: Container, family: Family) -> str | None:
    """The container's address in `family`, else its IPv4 address (what docker-proxy forwards IPv6 to)."""
    for net in c.networks:
        ip = net.ipv6 if family == "ipv6" else net.ipv4
        if ip:
            return ip
    for net in c.networks:
        if net.ipv4:
            return net.ipv4
    return None


def _sort_key(b: Binding) -> tuple:
    return (b.host_port is None, b.host_port or 0, b.protocol, b.family, b.host_ip, b.target_ip, b.target_port or 0)
