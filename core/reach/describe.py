"""A binding's reach: the packets its DNAT really catches, as JSON and as one line for people."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

from portscope.core.model import Rule
from portscope.core.reach.matches import FAMILY_RANGES, Space
from portscope.core.reach.space import (
    DADDR,
    DPORT,
    IIF,
    PROTO,
    SADDR,
    Box,
    Packed,
    PackedBox,
    PacketSet,
    Runs,
    coalesce,
    intersect,
    number_address,
    pack,
    pack_box,
    subtract_sets,
    unpack,
    unpack_mask,
)

_ANY = {"ipv4": "0.0.0.0", "ipv6": "::"}
EVERYWHERE = "from everywhere"


@dataclass(slots=True)
class Reach:
    """What one binding's DNAT rules catch, per hook, and how sure portscope is of it."""

    space: Space
    family: str
    packets: dict[str, Packed] = field(default_factory=dict)  # hook -> the packets caught there
    wanted: dict[str, Packed] = field(default_factory=dict)  # hook -> all traffic to its address/port/protocol
    uncertain_rules: list[Rule | None] = field(default_factory=list)

    def add(self, hook: str, packets: PacketSet, wanted: Box, uncertain: list[Rule | None]) -> None:
        """Add what one DNAT catches on `hook` (`wanted`: the traffic to its address, port and protocol)."""
        mine = self.packets.get(hook)
        self.packets[hook] = pack(coalesce(packets if mine is None else [*unpack(mine), *packets]))
        self.wanted[hook] = (*self.wanted.get(hook, ()), pack_box(wanted))
        for rule in uncertain:
            if not any(rule is u for u in self.uncertain_rules):
                self.uncertain_rules.append(rule)

    def from_the_world(self) -> bool:
        """Some packet arriving on an interface no rule names (the world, not a named bridge) is caught."""
        other = self.space.interfaces.other_bit
        return any(unpack_mask(box[IIF]) & other for box in self.packets.get("prerouting", ()))

    def full(self, hook: str) -> PacketSet:
        """All traffic of this family on `hook` to the binding's address, port and protocol."""
        universe = self.space.universe(self.family, hook)
        return coalesce([box for wanted in unpack(self.wanted[hook]) for box in intersect(universe, wanted)])

    @property
    def certain(self) -> bool:
        return not self.uncertain_rules

    @property
    def restricted(self) -> bool:
        """Only part of the traffic to the binding's address, port and protocol reaches its DNAT."""
        return any(text != EVERYWHERE for text in self._texts().values())

    def summary(self) -> str:
        """`from everywhere`, `not from docker0`, `prerouting: only from 10.0.0.0/8; output: ...`."""
        texts = self._texts()
        if len(set(texts.values())) == 1:
            return next(iter(texts.values()))
        # The host's own packets come from no interface: "not from docker0" is true of them too.
        both = set(texts) == {"prerouting", "output"}
        if both and texts["output"] == EVERYWHERE and self._hook_text("prerouting", interfaces_only=True):
            return texts["prerouting"]
        return "; ".join(f"{hook}: {text}" for hook, text in texts.items())

    def _texts(self) -> dict[str, str]:
        return {hook: self._hook_text(hook) for hook in self.packets}

    def _hook_text(self, hook: str, interfaces_only: bool = False):
        """The hook's summary, or (`interfaces_only`) whether all it leaves out is some input interfaces.

        Bindings whose sets differ only in one protocol and port share the answer (memoised).
        """
        packets, wanted = self.packets[hook], self.wanted[hook]
        key: tuple = ("text", self.family, hook, packets, wanted)
        shapes = {(box[PROTO], box[DPORT]) for box in (*packets, *wanted)}
        if len(shapes) == 1:
            key = ("text", self.family, hook, tuple(b[:PROTO] for b in packets), tuple(b[:PROTO] for b in wanted))
        found = self.space.memo.get(key)
        if found is None:
            full, caught = self.full(hook), unpack(packets)
            text = difference_text(self.space, caught, full)
            found = self.space.memo[key] = (text, text.startswith("not from") and _only_interfaces(caught, full))
        return found[interfaces_only]  # type: ignore[index]

    def to_json(self, rule_json) -> dict[str, object]:
        """The `reach` object of docs/json.md. Bindings that differ only in their port share one description."""
        shape = self._shape()
        template = self.space.memo.get(shape) if shape is not None else None
        if template is None:
            template = self._json(rule_json)
            if shape is not None:
                self.space.memo[shape] = template
        if shape is None:
            return template  # type: ignore[return-value]
        ports = next(iter(self.packets.values()))[0][DPORT]
        if ports == self.space.ports.every:
            return template  # type: ignore[return-value]
        ranges = list(map(list, self.space.ports.run_ranges(ports)))
        out = dict(template)  # type: ignore[call-overload]
        out["packets"] = [{**box, "ports": ranges} for box in template["packets"]]  # type: ignore[index]
        return out

    def _shape(self) -> tuple | None:
        """What the description depends on when every set has the same protocol and ports; None otherwise."""
        common = None
        parts = []
        for hook, packets in self.packets.items():
            wanted = self.wanted[hook]
            for box in packets + wanted:
                rest = box[PROTO:]
                if common is None:
                    common = rest
                elif rest != common:
                    return None
            parts.append((hook, tuple([b[:PROTO] for b in packets]), tuple([b[:PROTO] for b in wanted])))
        if common is None:
            return None
        return ("json", self.family, tuple(parts), common[0], tuple([id(r) for r in self.uncertain_rules]))

    def _json(self, rule_json) -> dict[str, object]:
        texts = self._texts()
        return {
            "certain": self.certain,
            "restricted": any(text != EVERYWHERE for text in texts.values()),
            "summary": self.summary(),
            "uncertain_rules": [
                rule_json(r) if r is not None else {"text": "(a rule set too complex to model exactly)"}
                for r in self.uncertain_rules
            ],
            "packets": [box_json(self.space, hook, box) for hook, packets in self.packets.items() for box in packets],
        }


def difference_text(space: Space, packets: PacketSet, full: PacketSet) -> str:
    """How `packets` fall short of `full`: "from everywhere", "not from docker0", "only from 10.0.0.0/8", ..."""
    if not subtract_sets(full, packets):
        return EVERYWHERE
    parts = []
    iif = _or(packets, IIF)
    every_iif = _or(full, IIF)
    if iif != every_iif:
        parts.append(_interfaces_text(space, iif))
    saddr = _or(packets, SADDR)
    if saddr != _or(full, SADDR):
        parts.append(_addresses_text(space, saddr, _or(full, SADDR), "from"))
    daddr = _or(packets, DADDR)
    if daddr != _or(full, DADDR):
        parts.append(_addresses_text(space, daddr, _or(full, DADDR), "to"))
    if _or(packets, DPORT) != _or(full, DPORT):
        parts.append("ports " + ports_text(space, _or(packets, DPORT)))
    if not parts or len(packets) > 1:
        parts.append("partly (see reach.packets)")
    return " and ".join(parts)


def _only_interfaces(packets: PacketSet, full: PacketSet) -> bool:
    """`packets` are `full` less some input interfaces, and nothing else."""
    every_iif = _or(full, IIF)
    return not subtract_sets(full, [(*box[:IIF], every_iif, *box[IIF + 1 :]) for box in packets])  # type: ignore[misc]  # six ints


def _addresses_text(space: Space, mask: int, every: int, way: str) -> str:
    """`not from 10.0.0.0/8` or `only to 10.0.0.5` (`way`: "from" or "to"), whichever is shorter to say."""
    axis = space.addresses
    missing = every & ~mask
    if len(axis.ranges(missing)) <= len(axis.ranges(mask)):
        return f"not {way} " + addresses_text(axis.ranges(missing))
    return f"only {way} " + addresses_text(axis.ranges(mask))


def _or(packets: PacketSet, dim: int) -> int:
    bits = 0
    for box in packets:
        bits |= box[dim]
    return bits


def _interfaces_text(space: Space, mask: int) -> str:
    alternatives = space.interfaces.describe(mask)
    if len(alternatives) == 1 and "name" not in alternatives[0] and "prefix" not in alternatives[0]:
        excluded = alternatives[0]["except"]
        return "not from " + ", ".join(excluded) if excluded else "from every interface"  # type: ignore[arg-type]
    names = []
    for alt in alternatives:
        if "name" in alt:
            names.append(str(alt["name"]))
        elif "prefix" in alt:
            names.append(f"{alt['prefix']}+" + (f" (but {', '.join(alt['except'])})" if alt["except"] else ""))  # type: ignore[arg-type]
        else:
            names.append("others")
    return "only from " + ", ".join(names)


def addresses_text(ranges: list[tuple[int, int]]) -> str:
    """Address ranges as prefixes where they are: `10.0.0.0/8, 192.168.1.5`."""
    parts: list[str] = []
    for first, last in ranges:
        a, b = ipaddress.ip_address(number_address(first)), ipaddress.ip_address(number_address(last))
        for net in ipaddress.summarize_address_range(a, b):
            parts.append(str(net.network_address) if net.num_addresses == 1 else str(net))
    return ", ".join(parts[:6]) + (f" and {len(parts) - 6} more" if len(parts) > 6 else "")


def ports_text(space: Space, mask: int) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in space.ports.ranges(mask))


def box_json(space: Space, hook: str, box: PackedBox) -> dict[str, object]:
    """One box as the `reach.packets` entry docs/json.md describes (a field left out means any value)."""
    key = ("box", hook, box[:DPORT])
    rest = space.memo.get(key)
    if rest is None:
        rest = space.memo[key] = _box_json_but_ports(space, hook, box)
    if box[DPORT] == space.ports.every:
        return rest  # type: ignore[return-value]
    out = dict(rest)  # type: ignore[call-overload]
    out["ports"] = list(map(list, space.ports.run_ranges(box[DPORT])))
    return out


def _box_json_but_ports(space: Space, hook: str, box: PackedBox) -> dict[str, object]:
    every = space.all
    out: dict[str, object] = {"hook": hook}
    if unpack_mask(box[PROTO]) != every[PROTO]:
        out["protocols"] = _memo(space, PROTO, box[PROTO], space.protocols.describe)
    out["daddr"] = _memo(space, DADDR, box[DADDR], lambda m: _address_json(space, m))
    if unpack_mask(box[0]) != 3:
        out["dst_local"] = unpack_mask(box[0]) == 2
    saddr = unpack_mask(box[SADDR])
    if saddr != _family_mask(space, saddr):
        out["saddr"] = _memo(space, SADDR, box[SADDR], lambda m: _address_json(space, m))
    if hook != "output" and unpack_mask(box[IIF]) | space.interfaces.empty_name != space.interfaces.all:
        out["in_interfaces"] = _memo(space, IIF, box[IIF], space.interfaces.describe)
    return out


def _memo(space: Space, dim: int, kept: Runs, describe):
    """`describe(mask)`, once per distinct mask of a dimension (callers copy nothing: JSON only reads it)."""
    key = ("dim", dim, kept)
    found = space.memo.get(key)
    if found is None:
        found = space.memo[key] = describe(unpack_mask(kept))
    return found


def _address_json(space: Space, mask: int) -> list[list[str]]:
    return [[number_address(a), number_address(b)] for a, b in space.addresses.ranges(mask)]


def _family_mask(space: Space, mask: int) -> int:
    """Every address of the families `mask` touches."""
    out = 0
    for family in FAMILY_RANGES:
        fam = space.family_mask(family)
        if mask & fam:
            out |= fam
    return out


def host_ip(space: Space, family: str, daddr: int, specific: bool) -> str:
    """The host address a binding answers on: "0.0.0.0"/"::" for every address of the host, else the one it is.

    `specific`: a rule on the way names a destination (`-d 10.0.0.5`); without one, a binding that
    reaches some address of the host other than loopback answers on all of them (what it misses is in
    its reach).
    """
    axis = space.addresses
    fam = space.family_mask(family)
    local = space.local_mask & fam
    mask = daddr & fam
    if not specific:
        return _ANY[family]
    ranges = axis.ranges(mask & local or mask)
    if not ranges:
        return _ANY[family]
    first, last = ranges[0]
    a, b = ipaddress.ip_address(number_address(first)), ipaddress.ip_address(number_address(last))
    nets: Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network] = ipaddress.summarize_address_range(a, b)
    net = next(nets)
    return str(net.network_address) if net.num_addresses == 1 else str(net)
