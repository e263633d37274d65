"""A rule's matches as a box of packets, over a space cut by every value the rules use.

What portscope does not model (`Matches.other`, an output interface, an address it cannot parse)
leaves its dimension whole and marks the box *uncertain*: the rule may match fewer packets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from portscope.core.model import IfaceMatch, Matches, Rule
from portscope.core.reach.space import (
    ADDRESS_END,
    PORT_END,
    V6_BASE,
    Box,
    InterfaceAxis,
    IntervalAxis,
    NameAxis,
    PacketSet,
    address_number,
)

LOOPBACK = ("127.0.0.0/8", "::1/128")
FAMILY_RANGES = {"ipv4": (0, V6_BASE - 1), "ipv6": (V6_BASE, ADDRESS_END)}


@lru_cache(maxsize=4096)
def address_range(text: str) -> tuple[int, int] | None:
    """`10.0.0.0/8` -> its first and last place on the address axis; None if not an address or prefix."""
    try:
        net = ipaddress.ip_network(text.split("%")[0], strict=False)
    except ValueError:
        return None
    return address_number(net.network_address), address_number(net.broadcast_address)


def interface_pattern(match: IfaceMatch, backend: str) -> tuple[str, bool]:
    """(name or prefix, is_prefix): iptables writes a prefix `br+`, nft `"br*"`."""
    wildcard = "*" if backend == "nftables" else "+"
    name = match.name
    if name.endswith(wildcard) and not name.endswith("\\" + wildcard):
        return name[:-1], True
    return name, False


@dataclass(slots=True)
class Space:
    """The cut of every dimension for one ruleset, and the sets every analysis starts from."""

    ports: IntervalAxis
    addresses: IntervalAxis
    protocols: NameAxis
    interfaces: InterfaceAxis
    local: list[tuple[int, int]]  # addresses taken as this host's (see build_space), as address ranges
    _masks: dict[str, int] = field(default_factory=dict)
    _universes: dict[tuple[str, str], PacketSet] = field(default_factory=dict)
    _interfaces: dict[tuple[str, str], int] = field(default_factory=dict)  # (name, backend) -> `interfaces.mask`
    memo: dict[tuple, object] = field(default_factory=dict)  # descriptions of packed masks, for core.reach.describe

    def family_mask(self, family: str) -> int:
        """Every address of one family ("ipv4", "ipv6")."""
        found = self._masks.get(family)
        if found is None:
            found = self._masks[family] = self.addresses.mask(*FAMILY_RANGES[family])
        return found

    @property
    def local_mask(self) -> int:
        """The host's addresses, loopback included."""
        found = self._masks.get("local")
        if found is None:
            found = self._masks["local"] = self.addresses_mask(self.local)
        return found

    @property
    def all(self) -> Box:
        """Every packet."""
        return (3, self.interfaces.all, self.addresses.all, self.addresses.all, self.protocols.all, self.ports.all)

    def addresses_mask(self, ranges: Iterable[tuple[int, int]]) -> int:
        bits = 0
        for first, last in ranges:
            bits |= self.addresses.mask(first, last)
        return bits

    def universe(self, family: str, hook: str) -> PacketSet:
        """Every packet of one family on one hook whose `dst_local` agrees with its destination."""
        found = self._universes.get((family, hook))
        if found is None:
            found = self._universes[(family, hook)] = self._universe(family, hook)
        return found

    def _universe(self, family: str, hook: str) -> PacketSet:
        fam = self.family_mask(family)
        iif = self.interfaces.empty_name if hook == "output" else self.interfaces.all & ~self.interfaces.empty_name
        local = self.local_mask & fam
        protocols, ports = self.protocols.all, self.ports.all
        out: PacketSet = []
        if local:
            out.append((2, iif, fam, local, protocols, ports))
        if fam & ~local:
            out.append((1, iif, fam, fam & ~local, protocols, ports))
        return out

    def to_host(self) -> Box:
        """Packets this host takes as its own (`universe` ties `dst_local` to the host's addresses)."""
        return (2, self.interfaces.all, self.addresses.all, self.addresses.all, self.protocols.all, self.ports.all)

    def box(self, rule: Rule) -> tuple[Box | None, bool]:
        """The packets a rule's matches take (None: none at all), and whether that is only an upper bound."""
        m = rule.matches
        uncertain = bool(m.other) or m.out_iface is not None
        dst_local = 3 if m.dst_local is None else 2 if m.dst_local else 1
        iif = self.interfaces.all
        if m.in_iface is not None:
            bits = self._interface_mask(m.in_iface, rule.backend)
            iif = iif & ~bits if m.in_iface.negated else bits
        saddr = daddr = self.addresses.all
        # A match on one family (`ip daddr`, an iptables table), and in an inet table `dnat ip to`:
        # the kernel's NAT expression does nothing to a packet of the other family.
        for family in (m.family, rule.family, rule.nat_family):
            if family in FAMILY_RANGES:
                fam = self.family_mask(family)
                saddr &= fam
                daddr &= fam
        if m.saddr is not None:
            span = address_range(m.saddr.network)
            if span is None:
                uncertain = True
            else:
                bits = self.addresses.mask(*span)
                saddr = saddr & ~bits if m.saddr.negated else saddr & bits
        if m.daddr is not None:
            span = address_range(m.daddr.network)
            if span is None:
                uncertain = True
            else:
                bits = self.addresses.mask(*span)
                daddr = daddr & ~bits if m.daddr.negated else daddr & bits
        proto = self.protocols.all
        if m.protocol is not None:
            bits = self.protocols.mask(m.protocol)
            proto = proto & ~bits if m.protocol_negated else bits
        dport = self.ports.all
        if m.dports:
            bits = 0
            for r in m.dports:
                bits |= self.ports.mask(r.first, r.last)
            dport = dport & ~bits if m.dports_negated else bits
        box = (dst_local, iif, saddr, daddr, proto, dport)
        if not all(box):
            return None, uncertain
        return box, uncertain

    def _interface_mask(self, match: IfaceMatch, backend: str) -> int:
        """The atoms an interface match names (before `!`), worked out once per name and backend."""
        key = (match.name, backend)
        found = self._interfaces.get(key)
        if found is None:
            found = self._interfaces[key] = self.interfaces.mask(*interface_pattern(match, backend))
        return found


def build_space(rules: Iterable[Rule], host_addresses: Iterable[str] = ()) -> Space:
    """Cut every dimension at the values `rules` and the host's addresses use."""
    port_cuts: set[int] = set()
    address_cuts: set[int] = {V6_BASE}
    protocols: set[str] = set()
    patterns: set[tuple[str, bool]] = set()
    asserted_local: list[tuple[int, int]] = []
    mentioned: list[tuple[int, int]] = []

    def cut(span: tuple[int, int]) -> None:
        address_cuts.add(span[0])
        address_cuts.add(span[1] + 1)

    for rule in rules:
        m: Matches = rule.matches
        if m.protocol is not None:
            protocols.add(m.protocol)
        for r in m.dports:
            port_cuts.add(r.first)
            port_cuts.add(r.last + 1)
        if m.in_iface is not None:
            patterns.add(interface_pattern(m.in_iface, rule.backend))
        for match in (m.saddr, m.daddr):
            span = address_range(match.network) if match is not None else None
            if span is not None:
                cut(span)
        if m.daddr is not None and not m.daddr.negated:
            span = address_range(m.daddr.network)
            if span is not None and span != FAMILY_RANGES.get("ipv4") and span[1] - span[0] != (1 << 128) - 1:
                mentioned.append(span)
                if m.dst_local:
                    asserted_local.append(span)
    loopback = [s for s in map(address_range, LOOPBACK) if s is not None]
    known = [s for s in map(address_range, host_addresses) if s is not None]
    for span in (*loopback, *known):
        cut(span)
    addresses = IntervalAxis(ADDRESS_END, address_cuts)
    # Local: loopback and the host's addresses. A pasted dump's host is unknown: there, what a rule says
    # is local (`-d X -m addrtype --dst-type LOCAL`) and any address no rule names as a destination (an
    # address a rule names is then taken as another host's, such as a ClusterIP).
    guessed = [*asserted_local, *_unmentioned(addresses, mentioned)]
    local = [*loopback, *(known or guessed)]
    return Space(
        ports=IntervalAxis(PORT_END, port_cuts),
        addresses=addresses,
        protocols=NameAxis(protocols),
        interfaces=InterfaceAxis(patterns),
        local=local,
    )


def _unmentioned(axis: IntervalAxis, mentioned: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The address ranges no positive destination match names."""
    named = 0
    for first, last in mentioned:
        named |= axis.mask(first, last)
    return axis.ranges(axis.all & ~named)
