"""Checks on the host's own protections: INPUT policy, loopback DNATs, route_localnet, port ranges."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from portscope.core.diagnose.engine_checks import BRIDGE_PREFIXES
from portscope.core.diagnose.listener_checks import ENGINE_PROCESSES
from portscope.core.findings import Finding
from portscope.core.model import Binding, Chain, Container, HostFacts, PortRange, Rule, Socket, Table, bracket

_WILDCARD = frozenset({"0.0.0.0", "::"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=4096)  # a host's bindings share a few addresses ("0.0.0.0", "127.0.0.1")
def network(text: str) -> Network | None:
    """`10.0.0.0/8`, `127.0.0.1`, `fd00::1/128` -> network; None for anything else (a set, a range)."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


_FIREWALL_HINTS = ("ufw-", "INPUT_direct", "IN_public", "f2b-")


def input_verdict(tables: Iterable[Table], family: str, protocol: str, port: int) -> tuple[str, list]:
    """What the host's INPUT chains do with a new connection to `port`: "accept", "drop" or "unknown".

    Walks filter INPUT (iptables) and nft filter chains on the input hook; the first rule that
    surely decides wins, a conditional rule is skipped (it may not match), the policy ends it.
    """
    verdict, evidence = "accept", []
    for t in tables:
        if t.family not in (family, "inet"):
            continue
        for chain in t.chains.values():
            if chain.hook == "input" and chain.kind in ("filter", None):
                v, ev = _walk_input(t, chain, protocol, port, set())
                if v == "drop":
                    return "drop", ev
                if v == "unknown":
                    verdict, evidence = "unknown", ev
    return verdict, evidence


def _walk_input(table: Table, chain: Chain, protocol: str, port: int, seen: set[str]) -> tuple[str, list]:
    seen.add(chain.name)
    for rule in chain.rules:
        m = rule.matches
        if m.protocol and (m.protocol != protocol) != m.protocol_negated:
            continue
        if m.dports and not m.dports_negated and not any(r.first <= port <= r.last for r in m.dports):
            continue
        if m.in_iface and not m.in_iface.negated and m.in_iface.name in ("lo", *BRIDGE_PREFIXES):
            continue  # rules for loopback or container bridges do not decide for outside clients
        if m.saddr and not m.saddr.negated:
            continue  # only some sources
        if any("ESTABLISHED" in o or "established" in o for o in m.other) and not any("NEW" in o for o in m.other):
            continue
        if rule.verdict in ("jump", "goto") and rule.jump in table.chains and rule.jump not in seen:
            v, ev = _walk_input(table, table.chains[rule.jump], protocol, port, seen)
            if v != "return":
                return v, [rule, *ev]
            continue
        decides = not m.other or all("ctstate NEW" in o or "state new" in o.lower() for o in m.other)
        if rule.verdict == "accept" and decides:
            return "accept", [rule]
        if rule.verdict in ("drop", "reject") and decides:
            return "drop", [rule]
        if rule.verdict == "return" and decides:
            return "return", []
    if chain.hook and (chain.policy or "").lower() in ("drop", "reject"):
        return "drop", []
    return ("return" if not chain.hook else "accept"), []


def exposed(bindings: Iterable[Binding], tables: list[Table]) -> list[Finding]:
    """A port on all addresses that the host's INPUT rules would block: Docker's DNAT bypasses INPUT."""
    user_chain = any("DOCKER-USER" in t.chains and _restricts(t.chains["DOCKER-USER"]) for t in tables)
    hints = sorted({c for t in tables for c in t.chains for h in _FIREWALL_HINTS if c.startswith(h)})[:3]
    out = []
    for b in bindings:
        if b.host_ip not in _WILDCARD or "dnat" not in b.carriers or b.host_port is None:
            continue
        if b.reach is not None and not b.reach.from_the_world():
            continue  # the DNAT catches nothing that arrives from outside (e.g. only from docker0)
        verdict, evidence = input_verdict(tables, b.family, b.protocol, b.host_port)
        if verdict != "drop":
            continue
        firewall = f" ({', '.join(hints)} present)" if hints else ""
        out.append(
            Finding(
                kind="exposed",
                severity="warning",
                title=f"{b.host_port}/{b.protocol} is open to the world although INPUT would block it",
                explanation=(
                    f"The host's INPUT {'rules' if evidence else 'policy'}{firewall} drop"
                    f"{'' if evidence else 's'} new connections to port {b.host_port}/{b.protocol}, but "
                    f"{b.owner}'s DNAT rewrites them to {b.target_ip} before INPUT is consulted: they are forwarded, "
                    "not delivered locally, so the firewall never sees them. "
                    + (
                        "DOCKER-USER has rules, check that they cover this port."
                        if user_chain
                        else "DOCKER-USER restricts nothing, so nothing filters this traffic."
                    )
                ),
                fix=f"portscope block {b.id}   # or publish on 127.0.0.1, or add a DOCKER-USER rule",
                rules=[*evidence, *b.rules],
                container=b.container_name,
                bindings=[b.id],
                port=b.host_port,
                protocol=b.protocol,
            )
        )
    return out


def _restricts(chain: Chain) -> bool:
    return any(r.verdict != "return" or not r.matches.unconditional for r in chain.rules)


def loopback_reachable(bindings: Iterable[Binding], tables: list[Table]) -> list[Finding]:
    """A DNAT for 127.0.0.1/::1 with no raw-table `! -i lo` DROP: neighbours on the link can use it."""
    guards = [
        r
        for t in tables
        if t.name == "raw" or any(c.kind == "filter" and c.priority == "raw" for c in t.chains.values())
        for c in t.chains.values()
        if c.hook == "prerouting"
        for r in c.rules
        if r.verdict == "drop" and r.matches.in_iface and r.matches.in_iface.negated and r.matches.in_iface.name == "lo"
    ]
    out = []
    for b in bindings:
        net = network(b.host_ip)
        if net is None or not net.is_loopback or "prerouting" not in b.hooks or "dnat" not in b.carriers:
            continue
        if any(_guards(r, b) for r in guards):
            continue
        out.append(
            Finding(
                kind="loopback-reachable",
                severity="error",
                title=f"{bracket(b.host_ip)}:{b.host_port}/{b.protocol} is reachable from the local network",
                explanation=(
                    f"Port {b.host_port} is published on {b.host_ip}, meant for this host alone, but its DNAT sits "
                    "in PREROUTING with no raw-table rule dropping loopback-addressed packets that arrive on other "
                    f"interfaces. A neighbour on the same link can send packets to {b.host_ip} through this host and "
                    "reach the container (moby #45610; Docker 28 adds the DROP)."
                ),
                fix=f"iptables -t raw -I PREROUTING -d {b.host_ip} ! -i lo -p {b.protocol} --dport {b.host_port} "
                "-j DROP   # or upgrade Docker to 28+",
                rules=list(b.rules),
                container=b.container_name,
                bindings=[b.id],
                port=b.host_port,
                protocol=b.protocol,
            )
        )
    return out


def _guards(rule: Rule, b: Binding) -> bool:
    """True when `rule` (a raw PREROUTING `! -i lo` DROP) surely drops every packet to the binding."""
    m = rule.matches
    if m.saddr is not None or m.other or m.protocol_negated or m.dports_negated:
        return False  # only some packets
    if m.daddr is not None:
        net, target = network(m.daddr.network), network(b.host_ip)
        if m.daddr.negated or net is None or target is None or net.version != target.version:
            return False
        if not target.subnet_of(net):  # type: ignore[arg-type]  # one IP version: checked above
            return False
    if m.protocol and m.protocol != b.protocol:
        return False
    return not m.dports or any(r.first <= (b.host_port or 0) <= r.last for r in m.dports)


def route_localnet(host: HostFacts, sockets: Iterable[Socket]) -> list[Finding]:
    """net.ipv4.conf.IF.route_localnet=1 while a host service listens on 127.0.0.0/8: it is reachable from IF.

    The sysctl alone puts nothing at risk; it matters when something that trusts "loopback only" listens
    there. The engine's own sockets (dockerd, docker-proxy) carry published ports and do not count.
    Warning for a host interface (or `all`), info for a container bridge (Docker sets it there itself).
    """
    at_risk = [s for s in sockets if _on_loopback_v4(s.address) and not _engine_socket(s)]
    if not at_risk:
        return []
    who = ", ".join(
        f"{s.process or '?'} (pid {s.pid if s.pid is not None else '?'}) on {s.address}:{s.port}/{s.protocol}"
        for s in at_risk[:3]
    ) + (f" and {len(at_risk) - 3} more" if len(at_risk) > 3 else "")
    out = []
    for iface in host.route_localnet:
        if iface in ("lo", "default"):
            continue  # loopback is loopback anyway; `default` is only the value new interfaces start with
        bridge = iface.startswith(BRIDGE_PREFIXES)
        where = "every interface" if iface == "all" else iface
        out.append(
            Finding(
                kind="route-localnet",
                severity="info" if bridge else "warning",
                title=f"route_localnet=1 on {iface}: {who} can be reached from {where}",
                explanation=(
                    f"net.ipv4.conf.{iface}.route_localnet is 1, so packets addressed to 127.0.0.0/8 that arrive on "
                    f"{where} are routed instead of dropped as martians, and {who} answers them. A service bound to "
                    "127.0.0.1 because it trusts only local clients is reachable from "
                    + (
                        "the containers on that bridge (Docker sets this with the userland proxy off)."
                        if bridge
                        else "the neighbours on that link."
                    )
                ),
                fix=f"sysctl -w net.ipv4.conf.{iface}.route_localnet=0"
                + ("   # Docker sets it again when it needs it" if bridge else ""),
                processes=at_risk,
            )
        )
    return out


def _on_loopback_v4(address: str) -> bool:
    """127.0.0.0/8, also written IPv4-mapped (::ffff:127.0.0.1) by a dual-stack socket."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return isinstance(ip, ipaddress.IPv4Address) and ip.is_loopback


def _engine_socket(s: Socket) -> bool:
    return s.proxy is not None or (s.process or "") in ENGINE_PROCESSES


def ephemeral_overlaps(bindings: Iterable[Binding], containers: Iterable[Container], host: HostFacts) -> list[Finding]:
    """A host port the user chose inside the ephemeral range and not reserved: a client may take it first."""
    rng = host.ephemeral_range
    if rng is None:
        return []
    chosen_by_engine = {
        (c.name, m.protocol, m.container_port) for c in containers for m in c.requested if not m.host_port
    }
    seen = set()
    out = []
    for b in bindings:
        port = b.host_port
        if port is None or not rng.first <= port <= rng.last or _reserved(port, host.reserved_ports):
            continue
        if (b.container_name, b.protocol, b.container_port) in chosen_by_engine or (b.protocol, port) in seen:
            continue
        seen.add((b.protocol, port))
        out.append(
            Finding(
                kind="ephemeral-overlap",
                severity="warning",
                title=f"host port {port}/{b.protocol} lies in the ephemeral range {rng.first}-{rng.last}",
                explanation=(
                    f"Port {port} was chosen for {b.container_name or b.target_ip}, but the kernel also hands out "
                    f"ports {rng.first}-{rng.last} to outgoing connections. If one takes {port} first (at boot, "
                    "before the container starts), publishing fails with 'address already in use'."
                ),
                fix=f"sysctl -w net.ipv4.ip_local_reserved_ports={port}   # persist it in /etc/sysctl.d/",
                container=b.container_name,
                bindings=[b.id],
                port=port,
                protocol=b.protocol,
            )
        )
    return out


def _reserved(port: int, reserved: tuple[PortRange, ...]) -> bool:
    return any(r.first <= port <= r.last for r in reserved)
