"""Sets of packets as unions of boxes over a finite cut of each dimension.

A packet, as the nat rules see it, is (destination is local, input interface, source address,
destination address, protocol, destination port). Each dimension is cut into *atoms*: the pieces
that no rule of the ruleset tells apart (port 8080; ports 8081-65535; names starting with "br-"
that no rule names exactly; ...). A set of values of one dimension is then a bit mask over its
atoms (a Python int), a *box* is one mask per dimension (the packets whose every field lies in its
mask), and a packet set is a list of boxes (their union). Intersection and difference are exact,
so first-match subtraction loses nothing; a union that grows past `MAX_BOXES` is replaced by its
hull, and the caller marks what depends on it as uncertain.

A mask's int is as long as its highest atom: with 60,000 published ports, one port's mask takes
7.5 kB. Sets kept beyond the step that computes them (per rule, per binding) are therefore kept
*packed* (`pack`): each mask of more than `SMALL` atoms as its runs of atoms, as long as what the
rules say, and unpacked where the algebra needs it.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator

#: The dimensions, in the order boxes are split (the first ones vary least in real rulesets).
DST_LOCAL, IIF, SADDR, DADDR, PROTO, DPORT = range(6)
DIMENSIONS = ("dst_local", "in_interface", "saddr", "daddr", "protocol", "dport")

Box = tuple[int, int, int, int, int, int]
PacketSet = list[Box]
#: A mask kept packed: the mask itself up to `SMALL` atoms (no larger than its runs), else its runs
#: of atoms, flat (first, last, first, last, ...), lowest first.
Runs = int | tuple[int, ...]
SMALL = 64
PackedBox = tuple[Runs, Runs, Runs, Runs, Runs, Runs]
#: A packet set kept packed (see the module doc).
Packed = tuple[PackedBox, ...]

#: Where a union of boxes is replaced by its hull (an over-approximation, reported as uncertain).
MAX_BOXES = 64

V6_BASE = 1 << 32  # IPv6 addresses are numbered after every IPv4 address, so one axis holds both
ADDRESS_END = V6_BASE + (1 << 128) - 1
PORT_END = 65535


def address_number(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """An address's place on the address axis."""
    return int(address) if address.version == 4 else V6_BASE + int(address)


def number_address(number: int) -> str:
    """The address at a place on the address axis."""
    if number < V6_BASE:
        return str(ipaddress.IPv4Address(number))
    return str(ipaddress.IPv6Address(number - V6_BASE))


class IntervalAxis:
    """A numeric dimension (ports, addresses) cut at every boundary a rule uses."""

    def __init__(self, end: int, cuts: Iterable[int]) -> None:
        self.end = end
        self.starts = sorted({0, *(c for c in cuts if 0 < c <= end)})
        self.all = (1 << len(self.starts)) - 1
        self.every = pack_mask(self.all)

    def mask(self, first: int, last: int) -> int:
        """The atoms of [first, last]; both ends must be cuts (`first`, `last + 1`) given to the axis."""
        i = bisect_right(self.starts, first) - 1
        j = bisect_right(self.starts, last) - 1
        return 1 << i if i == j else ((1 << (j + 1)) - 1) ^ ((1 << i) - 1)

    def atom_of(self, value: int) -> int:
        """The atom index holding `value`."""
        return bisect_right(self.starts, value) - 1

    def run_ranges(self, kept: Runs) -> list[tuple[int, int]]:
        """The inclusive value ranges of a packed mask (its runs are maximal, so the ranges are merged)."""
        if isinstance(kept, int):
            return self.ranges(kept)
        starts, count = self.starts, len(self.starts)
        return [
            (starts[kept[n]], starts[kept[n + 1] + 1] - 1 if kept[n + 1] + 1 < count else self.end)
            for n in range(0, len(kept), 2)
        ]

    def ranges(self, mask: int) -> list[tuple[int, int]]:
        """The inclusive value ranges a mask covers, merged."""
        out: list[tuple[int, int]] = []
        starts, count = self.starts, len(self.starts)
        if mask & (mask - 1) == 0 and mask:  # one atom (one published port): the common case
            i = mask.bit_length() - 1
            return [(starts[i], starts[i + 1] - 1 if i + 1 < count else self.end)]
        for i, j in runs(mask):
            last = starts[j + 1] - 1 if j + 1 < count else self.end
            out.append((starts[i], last))
        return out


class NameAxis:
    """A dimension of names (protocols): each name a rule uses is an atom, every other name one more."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        self.index = {name: i for i, name in enumerate(self.names)}
        self.other = 1 << len(self.names)
        self.all = (self.other << 1) - 1

    def mask(self, name: str) -> int:
        i = self.index.get(name)
        return self.other if i is None else 1 << i

    def atom_of(self, name: str) -> int:
        return self.index.get(name, len(self.names))

    def describe(self, mask: int) -> list[str] | dict[str, list[str]]:
        """`["tcp"]`, or `{"except": ["tcp", "udp"]}` when every other protocol is in."""
        inside = [n for n, i in self.index.items() if mask >> i & 1]
        if mask & self.other:
            return {"except": [n for n in self.names if n not in inside]}
        return inside


class InterfaceAxis:
    """Interface names: each exact name a rule uses, the rest of each prefix a rule uses, everything else.

    Patterns are `(text, is_prefix)`. Output packets have no input interface: the empty name "",
    always an atom of its own.
    """

    def __init__(self, patterns: Iterable[tuple[str, bool]]) -> None:
        patterns = set(patterns)
        self.exact = sorted({"", *(t for t, prefix in patterns if not prefix)})
        self.prefixes = sorted({t for t, prefix in patterns if prefix})
        self.atoms: list[tuple[str, bool] | None] = [
            *((t, False) for t in self.exact),
            *((t, True) for t in self.prefixes),
            None,
        ]
        self.index = {a: i for i, a in enumerate(self.atoms) if a is not None}
        self.other_bit = 1 << (len(self.atoms) - 1)
        self.all = (1 << len(self.atoms)) - 1
        self.empty_name = 1 << self.index[("", False)]

    def mask(self, text: str, prefix: bool) -> int:
        """The atoms a pattern matches: an exact name, or every name and prefix under a prefix."""
        if not prefix:
            return 1 << self.index[(text, False)]
        bits = 0
        for i, atom in enumerate(self.atoms):
            if atom is not None and atom[0].startswith(text) and (atom[1] or atom[0] != ""):
                bits |= 1 << i
        return bits

    def atom_of(self, name: str) -> int:
        """The atom a concrete interface name falls in."""
        found = self.index.get((name, False))
        if found is not None:
            return found
        best = None
        for prefix in self.prefixes:
            if name.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return len(self.atoms) - 1 if best is None else self.index[(best, True)]

    def _under(self, prefix: str | None) -> list[str]:
        """Patterns strictly under a prefix atom (every pattern, for the rest atom), as iptables writes them."""
        out = []
        for atom in self.atoms:
            if atom is None or atom == (prefix, True) or atom == ("", False):
                continue
            if prefix is None or atom[0].startswith(prefix):
                out.append(atom[0] + "+" if atom[1] else atom[0])
        return out

    def describe(self, mask: int) -> list[dict[str, object]]:
        """The mask as a union of alternatives: `{"name"}`, `{"prefix", "except"}`, `{"except"}`."""
        mask &= ~self.empty_name
        if mask & self.other_bit:
            excluded = [a for i, a in enumerate(self.atoms) if a is not None and a != ("", False) and not mask >> i & 1]
            if all(self._closed(atom, mask) for atom in excluded):
                return [{"except": [a[0] + "+" if a[1] else a[0] for a in excluded]}]
        out: list[dict[str, object]] = []
        for i, atom in enumerate(self.atoms):
            if not mask >> i & 1:
                continue
            if atom is None:
                out.append({"except": self._under(None)})
            elif atom[1]:
                out.append({"prefix": atom[0], "except": self._under(atom[0])})
            else:
                out.append({"name": atom[0]})
        return out

    def _closed(self, atom: tuple[str, bool], mask: int) -> bool:
        """Every atom under an excluded prefix atom is excluded too (so `except p+` says it exactly)."""
        if not atom[1]:
            return True
        return not any(
            mask >> i & 1 for i, a in enumerate(self.atoms) if a is not None and a != atom and a[0].startswith(atom[0])
        )


def runs(mask: int) -> Iterator[tuple[int, int]]:
    """The (first, last) bit indices of each run of set bits, lowest first."""
    for found in re.finditer("1+", format(mask, "b")[::-1]):
        yield found.start(), found.end() - 1


# --- packed sets, as they are kept -----------------------------------------------------------------


def pack_mask(mask: int) -> Runs:
    """A mask as it is kept (one atom and one run, the common large cases, without a scan)."""
    top = mask.bit_length() - 1
    if top < SMALL:
        return mask
    if mask == 1 << top:
        return (top, top)
    low = (mask & -mask).bit_length() - 1
    if mask == (2 << top) - (1 << low):
        return (low, top)
    return tuple(i for run in runs(mask) for i in run)


def unpack_mask(kept: Runs) -> int:
    """The mask of `pack_mask`."""
    if isinstance(kept, int):
        return kept
    if len(kept) == 2:
        first, last = kept
        return 1 << first if first == last else (2 << last) - (1 << first)
    mask = 0
    for n in range(0, len(kept), 2):
        mask |= (2 << kept[n + 1]) - (1 << kept[n])
    return mask


def one_atom(kept: Runs) -> int | None:
    """The atom of a packed mask of exactly one atom, else None."""
    if isinstance(kept, int):
        return kept.bit_length() - 1 if kept & (kept - 1) == 0 else None
    return kept[0] if len(kept) == 2 and kept[0] == kept[1] else None


def pack_box(box: Box) -> PackedBox:
    """A box as it is kept: only masks of more than `SMALL` atoms go through `pack_mask`."""
    return tuple([m if m.bit_length() <= SMALL else pack_mask(m) for m in box])  # type: ignore[return-value]


def unpack_box(box: PackedBox) -> Box:
    return tuple(map(unpack_mask, box))  # type: ignore[return-value]  # six ints


def pack(s: PacketSet) -> Packed:
    """A packet set as it is kept (see the module doc)."""
    return tuple(map(pack_box, s))


def unpack(s: Packed) -> PacketSet:
    """The packet set of `pack`."""
    return list(map(unpack_box, s))


# --- set algebra on boxes -------------------------------------------------------------------------


def intersect_box(a: Box, b: Box) -> Box | None:
    """The packets in both boxes, or None."""
    d0 = a[0] & b[0]
    if not d0:
        return None
    d1 = a[1] & b[1]
    if not d1:
        return None
    d2 = a[2] & b[2]
    if not d2:
        return None
    d3 = a[3] & b[3]
    if not d3:
        return None
    d4 = a[4] & b[4]
    if not d4:
        return None
    d5 = a[5] & b[5]
    if not d5:
        return None
    return (d0, d1, d2, d3, d4, d5)


def subtract_box(a: Box, b: Box) -> list[Box]:
    """The packets of `a` not in `b`, as disjoint boxes (one per dimension where `a` sticks out)."""
    if intersect_box(a, b) is None:
        return [a]
    return _outside(a, b)


def _outside(a: Box, b: Box) -> list[Box]:
    """`subtract_box` for boxes known to overlap."""
    out: list[Box] = []
    kept = list(a)
    for dim in range(6):
        outside = a[dim] & ~b[dim]
        if outside:
            piece = kept.copy()
            piece[dim] = outside
            out.append(tuple(piece))  # type: ignore[arg-type]  # six ints
        kept[dim] = a[dim] & b[dim]
    return out


def intersect(s: PacketSet, box: Box) -> PacketSet:
    """`s` ∩ `box`."""
    out = []
    for a in s:
        both = intersect_box(a, box)
        if both is not None:
            out.append(both)
    return out


def intersect_sets(s: PacketSet, t: PacketSet) -> PacketSet:
    """`s` ∩ `t`."""
    if not s or not t:
        return []
    if len(t) == 1:
        return intersect(s, t[0])
    out = []
    for b in t:
        out.extend(intersect(s, b))
    return out


def subtract(s: PacketSet, box: Box) -> PacketSet:
    """`s` minus `box`."""
    out = []
    for a in s:
        if intersect_box(a, box) is None:
            out.append(a)
        else:
            out.extend(_outside(a, box))
    return out


def split(s: PacketSet, box: Box) -> tuple[PacketSet, PacketSet]:
    """(`s` ∩ `box`, `s` minus `box`) in one pass: what a terminal rule takes, and what goes on."""
    inside: PacketSet = []
    outside: PacketSet = []
    for a in s:
        both = intersect_box(a, box)
        if both is None:
            outside.append(a)
        else:
            inside.append(both)
            outside.extend(_outside(a, box))
    return inside, outside


def subtract_sets(s: PacketSet, t: PacketSet) -> PacketSet:
    """`s` minus `t`."""
    for b in t:
        if not s:
            break
        s = subtract(s, b)
    return s


def contains_box(s: PacketSet, box: Box) -> bool:
    """True when every packet of `box` is in `s`."""
    return not subtract_sets([box], s)


def overlaps(s: PacketSet, t: PacketSet) -> bool:
    """True when `s` and `t` share a packet."""
    return any(intersect_box(a, b) is not None for a in s for b in t)


def union(s: PacketSet, t: PacketSet) -> PacketSet:
    """`s` ∪ `t`, with boxes that differ in one dimension merged."""
    if not s:
        return list(t)
    if not t:
        return list(s)
    return coalesce([*s, *t])


def coalesce(s: PacketSet) -> PacketSet:
    """Merge boxes equal in all dimensions but one, and drop boxes another one contains."""
    if len(s) == 2:  # the common case, a DNAT's catch cut in two by an earlier rule: `coalesce_pair`
        return coalesce_pair(s[0], s[1])
    changed = True
    while changed and len(s) > 1:
        changed = False
        for dim in range(6):
            merged: dict[tuple[int, ...], int] = {}
            for box in s:
                key = box[:dim] + box[dim + 1 :]
                merged[key] = merged.get(key, 0) | box[dim]
            if len(merged) < len(s):
                s = [(*key[:dim], bits, *key[dim:]) for key, bits in merged.items()]  # type: ignore[misc]
                changed = True
    if len(s) > 1:
        s = [a for i, a in enumerate(s) if not any(j != i and _inside(a, b) for j, b in enumerate(s))]
    return s


def coalesce_pair(a: Box, b: Box) -> PacketSet:
    """`coalesce([a, b])`, without its loops: one box when they differ in at most one dimension, the larger when
    one holds the other, else both (tests/unit/test_packed_sets.py holds the two equal)."""
    differ = (a[0] != b[0]) + (a[1] != b[1]) + (a[2] != b[2]) + (a[3] != b[3]) + (a[4] != b[4]) + (a[5] != b[5])
    if differ <= 1:
        return [(a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3], a[4] | b[4], a[5] | b[5])]
    if _inside(a, b):
        return [b]
    if _inside(b, a):
        return [a]
    return [a, b]


def _inside(a: Box, b: Box) -> bool:
    return all(x & ~y == 0 for x, y in zip(a, b, strict=True)) and a != b


def hull(s: PacketSet) -> Box:
    """The smallest box holding every packet of `s`."""
    bits = [0] * 6
    for box in s:
        for dim in range(6):
            bits[dim] |= box[dim]
    return tuple(bits)  # type: ignore[return-value]  # six ints
