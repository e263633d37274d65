"""What a packet must look like to travel a path of rules: the conjunction of their matches.

Used to walk from the entry chains (PREROUTING, OUTPUT) to each DNAT: a path whose
conditions contradict each other (`! -d 127.0.0.0/8` then `-d 127.0.0.1`) carries nothing.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from core.model import AddrMatch, Family, Matches, PortRange
from core.record import record

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)
def network(text: str) -> Network | None:
    """`10.0.0.0/8`, `127.0.0.1`, `fd00::1/128` -> network; None for anything else (a set, a range)."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@record
class PathCondition:
    """The accumulated conditions of a path. `None` fields mean "no constraint".

    Treated as immutable (`add` returns a new one); not frozen only because frozen
    dataclasses are slow to build and one is built per rule on every path.
    """

    protocol: str | None = None
    dports: tuple[PortRange, ...] | None = None
    daddr: str | None = None  # the most specific positive destination match
    daddr_excluded: tuple[str, ...] = ()
    dst_local: bool | None = None
    family: Family | None = None
    conditional: bool = False  # some condition on the path is not modelled (statistic, mark, ...)
    constraints: frozenset[str] = frozenset()  # interface, source and unmodelled matches, as text

    def covers(self, other: PathCondition) -> bool:
        """True when every packet that satisfies `other` also satisfies this condition.

        Conservative: an unmodelled condition on this side only covers the very same condition.
        """
        if self.protocol is not None and self.protocol != other.protocol:
            return False
        if self.dports is not None and (other.dports is None or not _ranges_cover(self.dports, other.dports)):
            return False
        if self.daddr is not None:
            mine, theirs = network(self.daddr), network(other.daddr) if other.daddr else None
            if mine is None or theirs is None or mine.version != theirs.version or not theirs.subnet_of(mine):  # type: ignore[arg-type]
                return False
        if not set(self.daddr_excluded) <= set(other.daddr_excluded):
            return False
        if self.dst_local is not None and self.dst_local != other.dst_local:
            return False
        if self.family is not None and self.family != other.family:
            return False
        return self.constraints <= other.constraints

    def add(self, m: Matches, lean: bool = False) -> PathCondition | None:
        """This path extended by a rule's matches, or None when they cannot both hold.

        `lean`: leave `constraints` and `conditional` as they were on the path (for a DNAT whose
        condition only locates its binding: they decide nothing there, and are the costly part).
        """
        protocol, dports, daddr, excluded = self.protocol, self.dports, self.daddr, self.daddr_excluded
        dst_local, family, conditional, constraints = self.dst_local, self.family, self.conditional, self.constraints
        if m.protocol is not None and not m.protocol_negated:
            if protocol is not None and protocol != m.protocol:
                return None
            protocol = m.protocol
        if m.dports and not m.dports_negated:
            dports = m.dports if dports is None else _intersect(dports, m.dports)
            if not dports:
                return None
        if m.daddr is not None:
            folded = self._with_daddr(m.daddr)
            if folded is None:
                return None
            daddr, excluded = folded
        if m.dst_local is not None:
            if dst_local is not None and dst_local != m.dst_local:
                return None
            dst_local = m.dst_local
        if m.family is not None:
            if family is not None and family != m.family:
                return None
            family = m.family
        if lean:
            pass
        elif m.in_iface or m.out_iface or m.saddr or m.other or m.dports_negated or m.protocol_negated:
            try:
                mine = m.constraint_text
            except AttributeError:
                mine = m.constraint_text = _constraints(m)
            constraints = constraints | mine if constraints else mine
            conditional = conditional or bool(m.other or m.dports_negated or m.protocol_negated)
        return PathCondition(protocol, dports, daddr, excluded, dst_local, family, conditional, constraints)

    def _with_daddr(self, addr: AddrMatch) -> tuple[str | None, tuple[str, ...]] | None:
        """(destination, exclusions) with a destination match folded in; None when it contradicts the path."""
        new = network(addr.network)
        if addr.negated:
            if self.daddr is not None and new is not None:
                current = network(self.daddr)
                if current is not None and current.version == new.version and current.subnet_of(new):  # type: ignore[arg-type]
                    return None
            return self.daddr, (*self.daddr_excluded, addr.network)
        if new is not None:
            for excluded in self.daddr_excluded:
                ex = network(excluded)
                if ex is not None and ex.version == new.version and new.subnet_of(ex):  # type: ignore[arg-type]
                    return None
            if self.daddr is not None:
                current = network(self.daddr)
                if current is not None and current.version == new.version and not current.overlaps(new):  # type: ignore[arg-type]
                    return None
                if current is not None and current.version == new.version and current.subnet_of(new):  # type: ignore[arg-type]
                    return self.daddr, self.daddr_excluded  # the path is already more specific
        return addr.network, self.daddr_excluded


def _constraints(m: Matches) -> frozenset[str]:
    """The conditions `PathCondition` does not fold into fields, as comparable text."""
    out = set(m.other)
    if m.in_iface is not None:
        out.add(f"iif{'!=' if m.in_iface.negated else '='}{m.in_iface.name}")
    if m.out_iface is not None:
        out.add(f"oif{'!=' if m.out_iface.negated else '='}{m.out_iface.name}")
    if m.saddr is not None:
        out.add(f"saddr{'!=' if m.saddr.negated else '='}{m.saddr.network}")
    if m.dports_negated:
        out.add("dport!=" + ",".join(map(str, m.dports)))
    if m.protocol_negated:
        out.add(f"proto!={m.protocol}")
    return frozenset(out)


def _ranges_cover(outer: tuple[PortRange, ...], inner: tuple[PortRange, ...]) -> bool:
    """True when every port of `inner` lies in some range of `outer`."""
    return all(any(o.first <= i.first and i.last <= o.last for o in outer) for i in inner)


def _intersect(a: tuple[PortRange, ...], b: tuple[PortRange, ...]) -> tuple[PortRange, ...]:
    """The port ranges in both `a` and `b`."""
    out = []
    for x in a:
        for y in b:
            lo, hi = max(x.first, y.first), min(x.last, y.last)
            if lo <= hi:
                out.append(PortRange(lo, hi))
    return tuple(out)
