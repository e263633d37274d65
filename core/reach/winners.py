"""Which earlier rules take the packets a DNAT's own conditions would give it: the rules that win.

The search replays the lost packets through the chains, but looks only at the rules that can take
some: when the lost packets have one destination port (the common case), the rules that match that
port alone or more than one port (`Candidates`), so a DNAT shadowed in a chain of 100,000 costs a
few steps, not 100,000.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from portscope.core.model import Chain, Rule, Table
from portscope.core.reach.firstmatch import NAT_VERDICTS, STOPPING, FirstMatch, Step, Summary, post_order
from portscope.core.reach.space import (
    DPORT,
    PacketSet,
    intersect,
    one_atom,
    subtract,
    subtract_sets,
    unpack,
    unpack_box,
)

#: How deep the search follows jumps to name rules (naming only: the reach itself has no such limit).
MAX_DEPTH = 64


@dataclass(slots=True)
class Winners:
    """The rules that take packets before the loser: verdicts (DNAT, ACCEPT, DROP, goto) and RETURNs."""

    verdicts: list[Rule] = field(default_factory=list)
    returns: list[Rule] = field(default_factory=list)


@dataclass(slots=True)
class Candidates:
    """A chain's steps by destination port: those matching one port atom, and all the others."""

    one_port: dict[int, list[int]]  # port atom -> the indices of the steps matching exactly that atom
    others: list[int]

    @classmethod
    def of(cls, summary: Summary) -> Candidates:
        one_port: dict[int, list[int]] = {}
        others: list[int] = []
        for n, step in enumerate(summary.steps):
            atom = one_atom(step.box[DPORT])
            if atom is not None:
                one_port.setdefault(atom, []).append(n)
            else:
                others.append(n)
        return cls(one_port, others)

    def steps(self, summary: Summary, lost: PacketSet) -> Iterable[Step]:
        """The steps, in order, that can take some of `lost` (every step if `lost` has several ports)."""
        ports = 0
        for box in lost:
            ports |= box[DPORT]
        if ports & (ports - 1):
            return summary.steps
        found = self.one_port.get(ports.bit_length() - 1, [])
        return [summary.steps[n] for n in sorted([*found, *self.others])]


class WinnerSearch:
    """Replays the lost packets through the chains in order, noting every rule that takes some."""

    def __init__(self, firstmatch: FirstMatch) -> None:
        self.fm = firstmatch
        self._below: dict[int, set[int]] = {}
        self._candidates: dict[int, Candidates] = {}

    def find(self, table: Table, hook: str, loser: Rule, lost: PacketSet) -> Winners:
        found = Winners()
        home = table.chains.get(loser.chain)
        if home is None:
            return found
        for base in table.chains.values():
            if base.hook == hook and base.kind == "nat" and id(home) in self._descendants(table, base):
                self._walk(table, base, lost, loser, home, found, 0)
                break
        return found

    def _descendants(self, table: Table, chain: Chain) -> set[int]:
        below = self._below.get(id(chain))
        if below is None:
            below = self._below[id(chain)] = {id(c) for c in post_order(table, chain)}
        return below

    def _walk(
        self,
        table: Table,
        chain: Chain,
        lost: PacketSet,
        loser: Rule | None,
        home: Chain | None,
        found: Winners,
        depth: int,
    ) -> bool:
        """Follow `lost` through `chain`; True once the loser is reached (then stop)."""
        summary = self.fm.summaries.get(id(chain))
        if summary is None:
            return False
        candidates = self._candidates.get(id(chain))
        if candidates is None:
            candidates = self._candidates[id(chain)] = Candidates.of(summary)
        for step in candidates.steps(summary, lost):
            rule = step.rule
            if rule is loser:
                return True
            box = unpack_box(step.box)
            taken = intersect(lost, box)
            if not taken or step.uncertain:
                continue
            verdict = rule.verdict
            if verdict in NAT_VERDICTS or verdict == "accept" or verdict in STOPPING:
                _add(found.verdicts, rule)
                lost = subtract(lost, box)
            elif verdict == "return":
                _add(found.returns, rule)
                lost = subtract(lost, box)
            elif verdict in ("jump", "goto"):
                target = table.chains.get(rule.jump or "")
                sub = self.fm.summaries.get(id(target))
                if target is None or sub is None:
                    continue
                if depth < MAX_DEPTH and home is not None and id(home) in self._descendants(table, target):
                    if self._walk(table, target, taken, loser, home, found, depth + 1):
                        return True
                    lost = subtract(lost, box)  # they went the loser's way and did not get there
                    if not lost:
                        return False
                    continue
                kept = subtract_sets(taken, unpack(sub.returned))
                if kept and depth < MAX_DEPTH:
                    self._walk(table, target, kept, None, None, found, depth + 1)
                if verdict == "goto":
                    _add(found.verdicts, rule)
                    lost = subtract(lost, box)
                else:
                    lost = subtract_sets(lost, kept)
            if not lost:
                return False
        return False


def _add(rules: list[Rule], rule: Rule) -> None:
    if not any(r is rule for r in rules):
        rules.append(rule)
