"""From NAT tables to bindings: what each DNAT really catches, first match first.

Entry chains are the nat chains the kernel enters for packets to this host: iptables' nat
PREROUTING and OUTPUT, and nft base chains of type nat on the prerouting and output hooks.
`core.reach.firstmatch` runs them as the kernel does (a DNAT, a nat ACCEPT, a RETURN or the end of
a goto'd chain stops a packet there; later rules see only what is left); a DNAT that catches
packets to one of this host's addresses carries a binding, with the exact packets (`Binding.reach`).
A DNAT that catches none is a `not_bindings` entry: shadowed (earlier rules take all its packets),
virtual-ip (it only catches packets for other hosts), or unreachable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from portscope.core.model import Binding, Owner, PortRange, Rule, Table, UnreachableDnat
from portscope.core.owners import owner_of_chain, owner_of_path
from portscope.core.reach.describe import Reach, addresses_text, host_ip
from portscope.core.reach.firstmatch import ENTRY_HOOKS, NAT_VERDICTS, DnatReach, FirstMatch, post_order
from portscope.core.reach.matches import Space, build_space
from portscope.core.reach.space import (
    DADDR,
    DPORT,
    PROTO,
    Packed,
    PacketSet,
    intersect,
    intersect_sets,
    pack,
    subtract_sets,
    unpack,
)
from portscope.core.reach.winners import Winners, WinnerSearch

_LOOPBACK: dict[str, str] = {"ipv4": "127.0.0.1", "ipv6": "::1"}
_ANY: dict[str, str] = {"ipv4": "0.0.0.0", "ipv6": "::"}


@dataclass(slots=True)
class Shadow:
    """A DNAT that earlier rules take some or all of its packets from (to this host)."""

    table: Table
    hook: str
    loser: Rule
    winners: Winners
    whole: bool  # no packet to this host reaches it on this hook
    left: Packed  # what still reaches it
    wanted: Packed  # what its own path conditions would give it
    path: list[Rule]
    space: Space


@dataclass(slots=True)
class Resolution:
    """Bindings carried by DNAT rules, DNAT rules that carry no host binding, and the shadowed ones."""

    bindings: list[Binding] = field(default_factory=list)
    unreachable: list[UnreachableDnat] = field(default_factory=list)
    shadows: list[Shadow] = field(default_factory=list)


def resolve(tables: Iterable[Table], host_addresses: Iterable[str] = (), catches: bool = True) -> Resolution:
    """Every binding the DNATs of `tables` really carry on a host with `host_addresses`.

    `catches=False` skips naming the rules that partly shadow a binding (only the diagnosis needs them).
    """
    tables = list(tables)
    space = build_space(_nat_rules(tables), host_addresses)
    firstmatch = FirstMatch(tables, space)
    outcome = firstmatch.run()
    by_rule: dict[int, list[DnatReach]] = {}
    for reach in outcome.reaches:
        by_rule.setdefault(id(reach.rule), []).append(reach)
    builder = _Bindings(space, WinnerSearch(firstmatch), catches)
    for reaches in by_rule.values():
        builder.add(reaches)
    for table in tables:
        for chain in table.chains.values():
            if not chain.may_dnat:
                continue
            for rule in chain.rules:
                if rule.verdict in NAT_VERDICTS and id(rule) not in by_rule:
                    reason = "no entry chain (PREROUTING/OUTPUT) reaches this rule"
                    builder.unreachable.append(UnreachableDnat(rule, reason))
    return Resolution(list(builder.merged.values()), builder.unreachable, builder.shadows)


def _nat_rules(tables: list[Table]) -> Iterable[Rule]:
    """The rules of every chain an entry chain reaches: the ones that cut the packet space."""
    for table in tables:
        seen: set[int] = set()
        for chain in table.chains.values():
            if chain.hook in ENTRY_HOOKS and chain.kind == "nat":
                for reached in post_order(table, chain):
                    if id(reached) not in seen:
                        seen.add(id(reached))
                        yield from reached.rules


class _Bindings:
    """Turns each DNAT's reaches into bindings (merged by key across hooks and rules) or a not-binding."""

    def __init__(self, space: Space, winners: WinnerSearch, catches: bool) -> None:
        self.space = space
        self.to_host = space.to_host()
        self.search = winners
        self.catches = catches
        self.merged: dict[tuple, Binding] = {}
        self.unreachable: list[UnreachableDnat] = []
        self.shadows: list[Shadow] = []
        self._hosts: dict[tuple[str, int, bool], str] = {}  # host_ip() of (family, destinations, specific)
        self._names: dict[int, list[tuple[str, int]]] = {}  # _protocols() of a mask
        self._came: dict[int, PacketSet] = {}  # id(reach.came) -> its packets to this host (a chain's, shared)

    def add(self, reaches: list[DnatReach]) -> None:
        rule = reaches[0].rule
        parts: list[_Part] = []
        shadows: list[Shadow] = []
        for r in reaches:
            caught = self._caught(r)
            nominal = r.nominal
            if nominal is not None:
                wanted = intersect(nominal, self.to_host)
                lost = subtract_sets(wanted, caught)
                if lost and (self.catches or not caught):
                    winners = self.search.find(r.table, r.hook, rule, lost)
                    shadows.append(
                        Shadow(
                            table=r.table,
                            hook=r.hook,
                            loser=rule,
                            winners=winners,
                            whole=not caught,
                            left=pack(caught),
                            wanted=pack(wanted),
                            path=r.path,
                            space=self.space,
                        )
                    )
            if caught:
                parts.extend(self._parts(r, caught))
        if shadows:
            self.shadows.extend(s for s in shadows if s.winners.verdicts)
        if parts:
            self._bind(parts)
        elif shadows:
            self.unreachable.append(UnreachableDnat(rule, _shadow_reason(shadows), "shadowed"))
        elif any(r.actual or r.nominal for r in reaches):
            daddr = 0
            for r in reaches:
                for box in r.actual or r.nominal or []:
                    daddr |= box[DADDR]
            where = addresses_text(self.space.addresses.ranges(daddr))
            self.unreachable.append(
                UnreachableDnat(rule, f"destination {where} is not an address of this host", "virtual-ip")
            )
        else:
            reason = "no packet can meet every condition on the path to this rule"
            self.unreachable.append(UnreachableDnat(rule, reason))

    def _caught(self, r: DnatReach) -> PacketSet:
        """`r.actual` ∩ packets to this host: the chain's entering set is cut to this host once, not per DNAT."""
        came = self._came.get(id(r.came))
        if came is None:
            came = self._came[id(r.came)] = intersect(r.came, self.to_host)
        return intersect_sets(came, unpack(r.step.reach)) if came else []

    def _parts(self, r: DnatReach, caught: PacketSet) -> list[_Part]:
        """The bindings one hook's catch carries: one per protocol and port range; none when the DNAT
        cannot apply to this family (`dnat ip6 to` in an inet table, for IPv4 packets)."""
        rule, family, space = r.rule, r.family, self.space
        nat = rule.nat
        address = nat.address if nat and nat.address else _LOOPBACK[family]
        if (rule.nat_family is not None and rule.nat_family != family) or (":" in address) != (family == "ipv6"):
            return []
        daddr = proto = 0
        for box in caught:
            daddr |= box[DADDR]
            proto |= box[PROTO]
        where = self._hosts.get((family, daddr, r.specific))
        if where is None:
            where = self._hosts[(family, daddr, r.specific)] = host_ip(space, family, daddr, r.specific)
        fam = space.family_mask(family)
        daddr = space.local_mask & fam if where == _ANY[family] else daddr & fam  # what it could answer on
        to_ports = nat.ports if nat else None
        out = []
        for name, proto_bits in self._protocols(proto):
            per_proto = caught if proto_bits == proto else intersect(caught, _only(space, PROTO, proto_bits))
            ports = 0
            for box in per_proto:
                ports |= box[DPORT]
            spans = self._spans(rule, ports)
            for first, last in spans:
                port_bits = ports if len(spans) == 1 else space.ports.mask(first, last)
                packets = per_proto if len(spans) == 1 else intersect(per_proto, _only(space, DPORT, port_bits))
                host: tuple[int | None, int | None] = (None, None) if port_bits == space.ports.all else (first, last)
                key = (family, name, where, *_span(*host), address, *_target_span(to_ports, host))
                shape = (2, space.interfaces.all, space.addresses.all, daddr, proto_bits, port_bits)
                out.append(_Part(key=key, reach=r, packets=packets, shape=shape))
        return out

    def _spans(self, rule: Rule, ports: int) -> list[tuple[int, int]]:
        """The caught ports as bindings list them: one per port or range the DNAT itself names
        (`--dports 81,82` is two bindings, `--dport 8000:8010` one), else one per run of ports."""
        axis = self.space.ports
        own = rule.matches.dports
        if not own or rule.matches.dports_negated or len(own) == 1:
            return axis.ranges(ports)
        return [span for r in own for span in axis.ranges(ports & axis.mask(r.first, r.last))]

    def _protocols(self, mask: int) -> list[tuple[str, int]]:
        """("tcp", bits) per named protocol, or one ("all", mask) when other protocols are in too."""
        found = self._names.get(mask)
        if found is None:
            axis = self.space.protocols
            if mask & axis.other:
                found = [("all", mask)]
            else:
                found = [(name, 1 << i) for name, i in axis.index.items() if mask >> i & 1]
            self._names[mask] = found
        return found

    def _bind(self, parts: list[_Part]) -> None:
        """Add a DNAT's parts to the bindings of their keys (hooks merged)."""
        for part in parts:
            r = part.reach
            binding = self.merged.get(part.key)
            if binding is None:
                family, protocol, where, first, last, address, t_first, t_last = part.key
                path = [*r.path, r.rule]
                owner: Owner = owner_of_chain(r.rule.table, r.rule.chain) or owner_of_path(path)
                binding = self.merged[part.key] = Binding(
                    family=family,
                    protocol=protocol,
                    host_ip=where,
                    host_port=first,
                    target_ip=address,
                    target_port=t_first,
                    owner=owner,
                    host_port_last=last,
                    target_port_last=t_last,
                    carriers=["dnat"],
                    rules=path,
                    hooks=[r.hook],
                    reach=Reach(self.space, family),
                )
            else:
                _add_evidence(binding, r.path, r.rule)
                if r.hook not in binding.hooks:
                    binding.hooks.append(r.hook)
            binding.reach.add(r.hook, part.packets, part.shape, r.uncertain_rules)  # type: ignore[union-attr]


@dataclass(slots=True)
class _Part:
    """One (protocol, port range) of what a DNAT catches on one hook, and the binding key it goes to."""

    key: tuple
    reach: DnatReach
    packets: PacketSet
    shape: tuple[int, int, int, int, int, int]  # all traffic to the binding's address, protocol and port


def _span(first: int | None, last: int | None) -> tuple[int | None, int | None]:
    """(first, last) of a port range, last None for one port."""
    return first, (None if last == first else last)


def _target_span(to_ports: PortRange | None, host: tuple[int | None, int | None]) -> tuple[int | None, int | None]:
    """The target's ports: the DNAT's own, else the host's (unchanged)."""
    if to_ports is None:
        return _span(*host)
    return _span(to_ports.first, to_ports.last)


def _only(space: Space, dim: int, bits: int) -> tuple[int, int, int, int, int, int]:
    box = list(space.all)
    box[dim] = bits
    return tuple(box)  # type: ignore[return-value]  # six ints


def _shadow_reason(shadows: list[Shadow]) -> str:
    rules = [r for s in shadows for r in (*s.winners.verdicts, *s.winners.returns)]
    if not rules:
        return "an earlier nat chain of the same hook takes every packet it would catch"
    named = "; ".join(f"{r.chain} #{r.position}: {r.text}" for r in rules[:3])
    return f"every packet it would catch is taken first by {named}"


def _add_evidence(binding: Binding, via: list[Rule], final: Rule) -> None:
    """Add a path's rules to the evidence: the jumps that reach the DNAT first, the DNAT last."""
    rules = binding.rules
    if rules[-1] is not final and not any(r is final for r in rules):
        rules.append(final)  # a second DNAT for the same binding
    for jump in via:
        if not any(r is jump for r in rules):
            rules.insert(len(rules) - 1, jump)
