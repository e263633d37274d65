"""A snapshot narrowed to one protocol and host port: what a publish or block on that port must look at.

A packet to host port P first meets the nat PREROUTING/OUTPUT chains with destination port P; once a DNAT
or REDIRECT rewrote it, filter FORWARD, nat POSTROUTING and INPUT see the target's port instead. So the
ports that matter start as {P} and grow, until nothing changes, by every port a DNAT/REDIRECT that can
see one of them matches (its bindings are cut from its whole match space, and what shadows part of it is
told in its finding: a rule for 8000-9000 is resolved over 8000-9000; one with no port match, or a negated
one, over every port) and every port it sends to (what the later chains and listeners see).
A rule is kept when its protocol and destination ports let it see one of these ports; every other rule
cannot touch those packets and is left out. A rule not parsed yet is judged by its port match alone where its
text surely says it (`Chain.select`), and a rule left out that way is never parsed (nor kept as "unparsed"
where the rest of it cannot be read: the kernel matches it only on its port). Chains
(with their hooks and policies), rule positions, host facts and the containers (a few records, checked whole)
stay as they are; sockets are kept on the ports that matter. Resolving and diagnosing the narrowed snapshot
gives the same bindings and findings for port P as the whole one (tests hold the verdicts equal on random
rule sets, the natlayouts dumps and live set-ups).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from portscope.core.model import Chain, Matches, PortRange, Rule, Snapshot, Table
from portscope.core.publish.conflicts import Verdict, verdict
from portscope.core.publish.model import StoredBinding

EVERY_PORT = PortRange(0, 65535)
#: Protocols a rule can name that are surely not another one's packets (anything else is kept).
_KNOWN = frozenset({"tcp", "udp", "sctp", "udplite", "dccp", "icmp", "icmpv6", "ipv6-icmp"})


def focus(snap: Snapshot, protocol: str, host_port: int) -> Snapshot:
    """`snap` with only the rules and sockets that packets of `protocol` to `host_port` can meet."""
    ports = ports_of_interest(snap.tables, protocol, host_port)
    tables = [_narrow(t, protocol, ports) for t in snap.tables]
    sockets = [s for s in snap.sockets if _within(s.port, ports)]
    connections = [c for c in snap.connections if _within(c.local_port, ports)]
    return replace(snap, tables=tables, sockets=sockets, connections=connections, sources=[])


def ports_of_interest(tables: Iterable[Table], protocol: str, host_port: int) -> list[PortRange]:
    """The host port and (to a fixed point) what the DNAT/REDIRECT rules that can see a port already in
    match and send to."""
    chains = [c for t in tables for c in t.chains.values() if c.may_dnat]  # only a DNAT/REDIRECT adds ports
    ports = [PortRange(host_port, host_port)]
    grew = True
    while grew:
        grew = False
        for chain in chains:
            for rule in chain.select(may_see(ports)):
                if not _same_protocol(rule.matches, protocol) or not sees(rule.matches, ports):
                    continue
                for extra in _reaches(rule):
                    if not any(p.first <= extra.first and extra.last <= p.last for p in ports):
                        ports.append(extra)
                        grew = True
    return ports


def _reaches(rule: Rule) -> list[PortRange]:
    """For a DNAT/REDIRECT: every port it matches (its bindings are cut from that whole space, and its finding
    is filed under the first port it names) and every port it sends to; nothing for other rules."""
    if rule.verdict not in ("dnat", "redirect"):
        return []
    m = rule.matches
    out = [EVERY_PORT] if not m.dports or m.dports_negated else list(m.dports)
    if rule.nat is not None and rule.nat.ports is not None:
        out.append(rule.nat.ports)
    return out


def _narrow(table: Table, protocol: str, ports: Sequence[PortRange]) -> Table:
    keep = may_see(ports)
    chains = {
        name: Chain(
            c.name,
            hook=c.hook,
            kind=c.kind,
            policy=c.policy,
            priority=c.priority,
            parsed=[r for r in c.select(keep) if _same_protocol(r.matches, protocol) and sees(r.matches, ports)],
        )
        for name, c in table.chains.items()
    }
    return Table(backend=table.backend, family=table.family, name=table.name, chains=chains)


def may_see(ports: Sequence[PortRange]) -> Callable[[tuple[PortRange, ...]], bool] | None:
    """For `Chain.select`: False for a rule whose port match, read from its text, excludes `ports`; None (every
    rule) when `ports` hold every port (a DNAT with no port match sees them all)."""
    if any(p.first <= EVERY_PORT.first and EVERY_PORT.last <= p.last for p in ports):
        return None
    return lambda own: _overlaps(own, ports)


def _same_protocol(m: Matches, protocol: str) -> bool:
    """False only when the rule surely matches another protocol's packets alone (a focus on "all" keeps all)."""
    if m.protocol is None or m.protocol not in _KNOWN or protocol not in _KNOWN:
        return True
    return (m.protocol == protocol) != m.protocol_negated


def sees(m: Matches, ports: Sequence[PortRange]) -> bool:
    """True when the rule's destination ports can match one of `ports` (a negated match is kept)."""
    return not m.dports or m.dports_negated or _overlaps(m.dports, ports)


def _overlaps(ranges: Sequence[PortRange], ports: Sequence[PortRange]) -> bool:
    return any(d.first <= p.last and p.first <= d.last for d in ranges for p in ports)


def _within(port: int, ports: Sequence[PortRange]) -> bool:
    return any(p.first <= port <= p.last for p in ports)


def check_port(snap: Snapshot, host_ip: str, host_port: int, protocol: str, stored: list[StoredBinding]) -> Verdict:
    """The conflict verdict for host_ip:host_port/protocol, from the part of `snap` that port can meet."""
    return verdict(focus(snap, protocol, host_port), host_ip, host_port, protocol, stored)
