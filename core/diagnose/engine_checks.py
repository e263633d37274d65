"""Checks that compare what the engine reports with what the kernel does."""

from __future__ import annotations

import functools
import ipaddress
import shlex
from collections import defaultdict
from collections.abc import Iterable

from portscope.core.diagnose.listener_checks import _running_ips
from portscope.core.diagnose.rule_checks import delete_command
from portscope.core.findings import Finding, Severity
from portscope.core.model import Binding, Container, HostFacts, Snapshot, Socket, Table
from portscope.core.sockets import ROOTLESS_CARRIERS

#: Interface names of container bridges: a DNAT into their subnets targets a container.
BRIDGE_PREFIXES = ("docker", "br-", "podman", "cni", "cbr", "nerdctl")


def bridge_networks(host: HostFacts) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The subnets of the host's container bridges."""
    nets = []
    for iface, cidr in host.networks:
        if iface.startswith(BRIDGE_PREFIXES):
            nets.append(ipaddress.ip_interface(cidr).network)
    return nets


def stale_rules(bindings: Iterable[Binding], snap: Snapshot) -> list[Finding]:
    """A DNAT into a container network whose target address belongs to no running container.

    Only the engine that was read is judged: on a host with Docker and Podman, the other's rules name
    containers this read cannot see."""
    if not snap.engine.reachable:
        return []
    running = _running_ips(snap.containers)
    bridges = bridge_networks(snap.host)
    other = "docker" if "podman" in (snap.engine.name or "").lower() else "podman"
    out = []
    for b in bindings:
        if "dnat" not in b.carriers or b.target_ip in running or b.owner == other:
            continue
        engine_rule = b.owner in ("docker", "podman")
        target = _address(b.target_ip)
        if target is None:
            continue
        if not engine_rule and not any(target in n for n in bridges):
            continue
        out.append(
            Finding(
                kind="stale-rule",
                severity="error",
                title=f"DNAT {b.protocol}/{b.host_port} -> {b.target_ip}:{b.target_port} targets no running container",
                explanation=(
                    f"Traffic to port {b.host_port}/{b.protocol} is rewritten to {b.target_ip}, but no running "
                    "container has that address: it goes nowhere (or to whichever container gets that address "
                    "next). Such rules are left by a crashed engine, a removed container or a hand edit."
                ),
                fix=_delete(b),
                rules=list(b.rules),
                bindings=[b.id],
                port=b.host_port,
                protocol=b.protocol,
            )
        )
    return out


@functools.lru_cache(maxsize=1 << 16)  # the same targets come back in every diagnosis of a live host
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _delete(b: Binding) -> str:
    return delete_command(b.rules[-1]) if b.rules else "restart the container engine"


def manages_nat(tables: Iterable[Table], family: str) -> bool:
    """True when an engine keeps NAT rules for `family` on this host (a DOCKER chain or docker-bridges table)."""
    return any(t.family in (family, "inet") and ("DOCKER" in t.chains or t.name == "docker-bridges") for t in tables)


def _families_read(snap: Snapshot) -> set[str]:
    """The address families whose iptables/nftables rules were actually read."""
    families: set[str] = set()
    for b in snap.backends:
        if b.read and (b.backend != "iptables-legacy" or b.rules):
            families.update(("ipv4", "ipv6") if b.family in (None, "inet") else (b.family,))
    return families


def missing_rules(bindings: list[Binding], snap: Snapshot) -> list[Finding]:
    """A port the engine reports as published that no DNAT carries."""
    out = []
    v6_managed = manages_nat(snap.tables, "ipv6")
    read = _families_read(snap)
    podman = "podman" in (snap.engine.name or "").lower()
    engine, again = (
        ("Podman", "or `podman network reload --all`") if podman else ("Docker", "or restart the Docker daemon")
    )
    for b in bindings:
        if not b.reported_by_engine or "dnat" in b.carriers or b.family not in read:
            continue  # (a family whose rules could not be read, e.g. without root, proves nothing)
        if any(s.process in ROOTLESS_CARRIERS for s in b.sockets):
            continue  # rootless Podman: its own process carries the port, with no NAT rule by design
        if b.family == "ipv6" and not v6_managed:
            continue  # this engine does not NAT IPv6: docker-proxy alone carries it, by design
        proxy = "proxy" in b.carriers
        out.append(
            Finding(
                kind="missing-rule",
                severity="warning" if proxy else "error",
                title=f"{b.container_name}: {b.host_ip}:{b.host_port}/{b.protocol} is published but has no DNAT rule",
                explanation=(
                    f"{engine} reports port {b.host_port}/{b.protocol} of {b.container_name} as published, but the "
                    "kernel has no DNAT rule for it. "
                    + (
                        "Only docker-proxy carries it now: the container sees every client as the host's address."
                        if proxy
                        else "Nothing carries it: connections are refused or time out."
                    )
                    + f" This is what a firewalld/ufw reload or an `iptables -F` does to {engine}'s rules."
                ),
                fix=f"{engine.lower()} restart {shlex.quote(b.container_name or '')}   # {again} to re-create "
                "every rule",
                container=b.container_name,
                bindings=[b.id],
                port=b.host_port,
                protocol=b.protocol,
            )
        )
    return out


def ports_already_allocated(
    containers: Iterable[Container], bindings: list[Binding], sockets: Iterable[Socket]
) -> list[Finding]:
    """A container that requested a host port it did not get, or that will not start because it is taken.

    Holders are indexed by (protocol, port); a socket holds a request when their addresses overlap (either
    is a wildcard, or they are equal). Docker's own proxies and placeholders count: a second container
    asking for a port another one publishes gets "port is already allocated".
    """
    socks: dict[tuple[str, int], list[Socket]] = defaultdict(list)
    for s in sockets:
        socks[(s.protocol, s.port)].append(s)
    owners: dict[tuple[str, int], set[str]] = defaultdict(set)
    for b in bindings:
        if b.host_port is not None and b.container_name:
            owners[(b.protocol, b.host_port)].add(b.container_name)
    out = []
    for c in containers:
        got = {(m.protocol, m.container_port, m.host_port) for m in c.in_force}
        for m in c.requested:
            if not m.host_port.isdigit():
                continue
            port = int(m.host_port)
            if c.state == "running" and (m.protocol, m.container_port, m.host_port) in got:
                continue
            procs = [s for s in socks.get((m.protocol, port), ()) if _overlaps(m.host_ip, s.address)]
            if c.state != "running":  # its own bindings are gone while it is stopped: anything there is another's
                procs = [s for s in procs if s.proxy is None or s.proxy.container_ip not in _ips(c)]
            others = sorted(owners.get((m.protocol, port), set()) - {c.name})
            holders = [f"{s.process or '?'} (pid {s.pid if s.pid is not None else '?'})" for s in procs]
            holders += [f"container {name}" for name in others]
            if c.state == "running":
                why = f"it is held by {', '.join(holders)}" if holders else "the engine did not bind it"
            elif holders:
                why = f"it is now held by {', '.join(holders)}, so the container will fail to start"
            else:
                continue
            out.append(
                Finding(
                    kind="port-already-allocated",
                    severity="error",
                    title=f"{c.name} ({c.state}) asks for host port {port}/{m.protocol}: {why}",
                    explanation=(
                        f"Container {c.name} requests host port {port}/{m.protocol} for its port {m.container_port}. "
                        f"{why[0].upper() + why[1:]}. Docker says 'port is already allocated' or 'address already "
                        "in use' when it starts."
                    ),
                    fix=f"ss -ltnup 'sport = :{port}'   # free the port, or recreate {c.name!r} with another host port",
                    processes=procs,
                    container=c.name,
                    port=port,
                    protocol=m.protocol,
                )
            )
    return out


def _overlaps(requested_ip: str, address: str) -> bool:
    """True when a socket on `address` takes the host address a container requested ("" = all)."""
    return requested_ip in _ALL or address in _ALL or requested_ip == address


_ALL = frozenset({"", "0.0.0.0", "::", "*"})


def _ips(c: Container) -> set[str]:
    return {ip for n in c.networks for ip in (n.ipv4, n.ipv6) if ip}


def family_mismatches(bindings: list[Binding], host: HostFacts) -> list[Finding]:
    """One container port the engine publishes on different host ports per family (warning), or on one family
    only while the host has a global IPv6 address (info: Docker without --ipv6 never publishes IPv6 NAT).

    Only bindings the engine reports count: a hand DNAT to a container is not the engine's publication.
    """
    by_port: dict[tuple[str, str, int], dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    ids: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for b in bindings:
        # reported but carried by nothing is missing-rule's business
        if (
            b.reported_by_engine
            and b.carriers
            and b.container_name
            and b.host_port is not None
            and b.container_port is not None
        ):
            key = (b.container_name, b.protocol, b.container_port)
            by_port[key][b.family].add(b.host_port)
            ids[key].append(b.id)
    global_v6 = sorted(
        cidr.split("/")[0]
        for iface, cidr in host.networks
        if not iface.startswith(BRIDGE_PREFIXES) and _global_v6(cidr)
    )
    out = []
    for (name, proto, cport), fams in by_port.items():
        severity: Severity
        v4, v6 = fams.get("ipv4", set()), fams.get("ipv6", set())
        if v4 and v6 and v4 != v6:
            severity = "warning"
            detail = f"IPv4 host port {sorted(v4)} but IPv6 host port {sorted(v6)} (moby #43246)"
            why = "Clients that resolve the host to the other family reach another port, or nothing."
        elif global_v6 and bool(v4) != bool(v6):
            severity = "info"
            only = "IPv4" if v4 else "IPv6"
            detail = f"published on {only} only although the host has the global IPv6 address {global_v6[0]}"
            why = (
                "Clients that reach the host over the other family get nothing: Docker without --ipv6 (and with "
                "the userland proxy off) writes IPv4 NAT rules only."
            )
        else:
            continue
        host_ports = sorted(v4 | v6)
        out.append(
            Finding(
                kind="family-mismatch",
                severity=severity,
                title=f"{name} {cport}/{proto}: {detail}",
                explanation=f"Port {cport}/{proto} of {name} is published differently on IPv4 and IPv6: {detail}. "
                + why,
                fix=f"docker port {shlex.quote(name)}"
                "   # recreate with an explicit host port for both families, or enable IPv6 in the engine "
                "(or the userland proxy)",
                container=name,
                bindings=ids[(name, proto, cport)],
                port=host_ports[0],
                protocol=proto,
            )
        )
    return out


#: Addresses a remote IPv6 client cannot reach the host on from the internet.
_NOT_GLOBAL_V6 = tuple(
    ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "::/128", "::1/128")
)


def _global_v6(cidr: str) -> bool:
    """A global-scope IPv6 address: not ULA, link-local, site-local, multicast, loopback or IPv4-mapped.

    Documentation prefixes (2001:db8::/32) count: the kernel gives them global scope too.
    """
    ip = ipaddress.ip_interface(cidr).ip
    if not isinstance(ip, ipaddress.IPv6Address) or ip.ipv4_mapped is not None:
        return False
    return not any(ip in net for net in _NOT_GLOBAL_V6)
