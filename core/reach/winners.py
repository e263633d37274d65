"""Which earlier rules take the packets a DNAT's own conditions would give it: the rules that win."""

from __future__ import annotations

from dataclasses import dataclass, field

from portscope.core.model import Chain, Rule, Table
from portscope.core.reach.firstmatch import NAT_VERDICTS, STOPPING, FirstMatch, post_order
from portscope.core.reach.space import PacketSet, intersect, subtract, subtract_sets

#: How deep the search follows jumps to name rules (naming only: the reach itself has no such limit).
MAX_DEPTH = 64


@dataclass(slots=True)
class Winners:
    """The rules that take packets before the loser: verdicts (DNAT, ACCEPT, DROP, goto) and RETURNs."""

    verdicts: list[Rule] = field(default_factory=list)
    returns: list[Rule] = field(default_factory=list)


class WinnerSearch:
    """Replays the lost packets through the chains in order, noting every rule that takes some."""

    def __init__(self, firstmatch: FirstMatch) -> None:
        self.fm = firstmatch
        self._below: dict[int, set[int]] = {}

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
        for step in summary.steps:
            rule = step.rule
            if rule is loser:
                return True
            taken = intersect(lost, step.box)
            if not taken or step.uncertain:
                continue
            verdict = rule.verdict
            if verdict in NAT_VERDICTS or verdict == "accept" or verdict in STOPPING:
                _add(found.verdicts, rule)
                lost = subtract(lost, step.box)
            elif verdict == "return":
                _add(found.returns, rule)
                lost = subtract(lost, step.box)
            elif verdict in ("jump", "goto"):
                target = table.chains.get(rule.jump or "")
                sub = self.fm.summaries.get(id(target))
                if target is None or sub is None:
                    continue
                if depth < MAX_DEPTH and home is not None and id(home) in self._descendants(table, target):
                    if self._walk(table, target, taken, loser, home, found, depth + 1):
                        return True
                    lost = subtract(lost, step.box)  # they went the loser's way and did not get there
                    if not lost:
                        return False
                    continue
                kept = subtract_sets(taken, sub.returned)
                if kept and depth < MAX_DEPTH:
                    self._walk(table, target, kept, None, None, found, depth + 1)
                if verdict == "goto":
                    _add(found.verdicts, rule)
                    lost = subtract(lost, step.box)
                else:
                    lost = subtract_sets(lost, kept)
            if not lost:
                return False
        return False


def _add(rules: list[Rule], rule: Rule) -> None:
    if not any(r is rule for r in rules):
        rules.append(rule)
