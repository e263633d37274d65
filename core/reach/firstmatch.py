"""Run the nat chains as the kernel does, first match wins, over sets of packets.

Two passes, each linear in the rules:

1. `summarise`: every chain once, bottom-up, as if every packet entered it: what each DNAT would
   catch there (`Step.reach`), what leaves by RETURN or the chain's end (`Summary.returned`), what
   a nat ACCEPT takes (`accepted`: such packets go on to the next nat base chain of the hook), and
   what rules with unmodelled matches *may* take (`maybe`). A rule sees only what every earlier rule
   of its chain, and every chain jumped to before it, left over. Because a chain treats each packet
   on its own, the packets a caller really sends are just intersected with the summary, so a
   sub-chain shared by many callers costs the same as one (no walk per path).
2. `propagate`: per hook and family, from the base chains in priority order, the packets that
   really enter each chain (`entering`) and, ignoring first-match, the ones whose path conditions
   hold (`nominal`); a DNAT's real reach is its chain's entering set ∩ its summary reach.

Both passes iterate over an explicit order of chains (no recursion), so nesting depth is not
limited. A set that grows past `space.MAX_BOXES` boxes is replaced by its hull and reported as
uncertain. What the passes keep per rule and chain (steps, summaries) is kept packed (`space.pack`);
a DNAT's reach is worked out from them when asked (`DnatReach`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from portscope.core.model import Chain, Rule, Table
from portscope.core.reach.matches import Space
from portscope.core.reach.space import (
    MAX_BOXES,
    Box,
    Packed,
    PackedBox,
    PacketSet,
    coalesce,
    hull,
    intersect,
    intersect_sets,
    overlaps,
    pack,
    pack_box,
    split,
    subtract_sets,
    unpack,
    unpack_box,
)

ENTRY_HOOKS = ("prerouting", "output")
NAT_VERDICTS = frozenset({"dnat", "redirect"})
STOPPING = frozenset({"drop", "reject"})
#: Named nft priorities a nat base chain uses; iptables' nat chains sit at dstnat (-100).
PRIORITIES = {"dstnat": -100, "srcnat": 100, "filter": 0, "mangle": -150, "raw": -300, "security": 50}
#: At most this many uncertain rules are tracked per chain or path (the answer stays uncertain).
MAX_MAYBE = 16

#: (the rule, or None for a set too complex to keep exact; the packets it may take)
Maybe = tuple[Rule | None, PacketSet]


@dataclass(slots=True)
class Step:
    """One rule that matters to the second pass, with what the first one learned there."""

    rule: Rule
    box: PackedBox
    uncertain: bool
    before: Packed  # what reached the rule (kept for jumps and gotos)
    reach: Packed  # DNAT: what it catches (`(box,)` when clean); other rules: unused
    clean: bool  # DNAT: nothing earlier took any packet its matches take
    maybe_count: int  # how many of the chain's `maybe` entries come before this rule


@dataclass(slots=True)
class Summary:
    """A chain as seen by a packet that enters it (see the module doc)."""

    chain: Chain
    steps: list[Step] = field(default_factory=list)
    returned: Packed = ()
    accepted: Packed = ()
    maybe: list[Maybe] = field(default_factory=list)


@dataclass(slots=True)
class DnatReach:
    """What one DNAT catches on one hook and family.

    The packets are worked out when asked, from the step and its chain's sets (which the chain's
    DNATs share): kept per DNAT, they would take memory in proportion to rules times ports.
    """

    rule: Rule
    table: Table
    hook: str
    family: str
    step: Step
    came: PacketSet  # what really enters the DNAT's chain
    pure: PacketSet | None  # what its path conditions alone bring there; None when `nominal` equals `actual`
    uncertain_rules: list[Rule | None]
    uncertain: bool
    path: list[Rule]  # the jumps that bring packets here, entry first
    specific: bool  # every path that brings it packets it catches names a destination (`-d 10.0.0.5`, `ip daddr ...`)

    @property
    def actual(self) -> PacketSet:
        """First-match: the packets it really rewrites."""
        return intersect_sets(self.came, unpack(self.step.reach)) if self.came else []

    @property
    def nominal(self) -> PacketSet | None:
        """Its path conditions alone; None when equal to `actual`."""
        return None if self.pure is None else intersect(self.pure, unpack_box(self.step.box))


@dataclass(slots=True)
class Outcome:
    """Every DNAT's reach on every hook, and the summaries for naming the rules that win."""

    reaches: list[DnatReach]
    reached_chains: set[int]  # id() of chains some path from an entry chain enters
    summaries: dict[int, Summary]


class FirstMatch:
    """The two passes over one set of tables (all families and backends of a host)."""

    def __init__(self, tables: Iterable[Table], space: Space) -> None:
        self.tables = list(tables)
        self.space = space
        self.summaries: dict[int, Summary] = {}

    # --- pass 1 -------------------------------------------------------------------------------

    def summarise(self, table: Table, root: Chain) -> None:
        """Summarise `root` and every chain below it, children first."""
        for chain in post_order(table, root):
            if id(chain) not in self.summaries:
                self.summaries[id(chain)] = self._summary(table, chain)

    def _summary(self, table: Table, chain: Chain) -> Summary:
        space = self.space
        out = Summary(chain)
        rem: PacketSet = [space.all]
        returned: PacketSet = []
        accepted: PacketSet = []
        maybe = out.maybe
        for rule in chain.rules:
            box, uncertain = space.box(rule)
            verdict = rule.verdict
            if box is None or not rem:
                continue
            if verdict in NAT_VERDICTS:
                reach, rest = self._cut(rem, box, uncertain)
                clean = len(reach) == 1 and reach[0] == box
                kept = pack_box(box)
                out.steps.append(
                    Step(
                        rule=rule,
                        box=kept,
                        uncertain=uncertain,
                        before=(),
                        reach=(kept,) if clean else pack(reach),
                        clean=clean,
                        maybe_count=len(maybe),
                    )
                )
                rem = self._take(rest, reach, uncertain, rule, maybe)
            elif verdict == "accept" or verdict in STOPPING or verdict == "return":
                taken, rest = self._cut(rem, box, uncertain)
                if not taken:
                    continue
                out.steps.append(
                    Step(
                        rule=rule,
                        box=pack_box(box),
                        uncertain=uncertain,
                        before=(),
                        reach=(),
                        clean=False,
                        maybe_count=len(maybe),
                    )
                )
                if verdict == "accept":
                    accepted = self._union(accepted, taken, maybe)
                elif verdict == "return":
                    returned = self._union(returned, taken, maybe)
                rem = self._take(rest, taken, uncertain, rule, maybe)
            elif verdict in ("jump", "goto") and rule.jump:
                target = table.chains.get(rule.jump)
                sub = self.summaries.get(id(target)) if target is not None else None
                if sub is None:
                    continue  # a missing chain (or a loop the kernel would refuse): nothing happens
                out.steps.append(
                    Step(
                        rule=rule,
                        box=pack_box(box),
                        uncertain=uncertain,
                        before=pack(rem),
                        reach=(),
                        clean=False,
                        maybe_count=len(maybe),
                    )
                )
                went, rest = self._cut(rem, box, uncertain)
                back = intersect_sets(went, unpack(sub.returned))
                accepted = self._union(accepted, intersect_sets(went, unpack(sub.accepted)), maybe)
                for inner, may in sub.maybe:
                    shared = intersect_sets(went, may)
                    if shared and len(maybe) < MAX_MAYBE:
                        maybe.append((inner, shared))
                if verdict == "goto":
                    returned = self._union(returned, back, maybe)
                    rem = self._take(rest, went, uncertain, rule, maybe)
                elif uncertain:
                    if len(maybe) < MAX_MAYBE:
                        maybe.append((rule, subtract_sets(went, back)))
                else:
                    rem = self._union(rest, back, maybe)
        out.returned = pack(self._union(returned, rem, maybe))
        out.accepted = pack(accepted)
        return out

    @staticmethod
    def _cut(rem: PacketSet, box: Box, uncertain: bool) -> tuple[PacketSet, PacketSet]:
        """(what a rule's box takes of `rem`, what is left): `rem` whole when its matches are uncertain."""
        if uncertain:
            return intersect(rem, box), rem
        return split(rem, box)

    def _take(self, rest: PacketSet, taken: PacketSet, uncertain: bool, rule: Rule, maybe: list[Maybe]) -> PacketSet:
        """What goes on after a terminal rule (`rest`, from `_cut`), its packets noted if its matches are uncertain."""
        if uncertain:
            if taken and len(maybe) < MAX_MAYBE:
                maybe.append((rule, taken))
            return rest
        return self._bounded(rest, maybe)

    def _union(self, a: PacketSet, b: PacketSet, maybe: list[Maybe]) -> PacketSet:
        if not b:
            return a
        if not a:
            return self._bounded(b, maybe)
        return self._bounded(coalesce([*a, *b]), maybe)

    def _bounded(self, s: PacketSet, maybe: list[Maybe]) -> PacketSet:
        """`s`, or its hull (noted as uncertain) when it has grown past MAX_BOXES boxes."""
        if len(s) <= MAX_BOXES:
            return s
        s = coalesce(s)
        if len(s) <= MAX_BOXES:
            return s
        whole = [hull(s)]
        if len(maybe) < MAX_MAYBE:
            maybe.append((None, whole))
        return whole

    # --- pass 2 -------------------------------------------------------------------------------

    def run(self) -> Outcome:
        reaches: list[DnatReach] = []
        reached: set[int] = set()
        for family in ("ipv4", "ipv6"):
            for hook in ENTRY_HOOKS:
                incoming = self.space.universe(family, hook)
                for table, base in self._bases(family, hook):
                    self.summarise(table, base)
                    incoming = self._propagate(table, base, family, hook, incoming, reaches, reached)
        return Outcome(reaches, reached, self.summaries)

    def _bases(self, family: str, hook: str) -> list[tuple[Table, Chain]]:
        """The nat base chains packets of `family` meet on `hook`, in priority order."""
        found = []
        for n, table in enumerate(self.tables):
            if table.family not in (family, "inet"):
                continue
            for chain in table.chains.values():
                if chain.hook == hook and chain.kind == "nat":
                    found.append((priority(chain.priority), n, table, chain))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(table, chain) for _, _, table, chain in found]

    def _propagate(
        self,
        table: Table,
        base: Chain,
        family: str,
        hook: str,
        incoming: PacketSet,
        reaches: list[DnatReach],
        reached: set[int],
    ) -> PacketSet:
        """Send `incoming` through `base`; record every DNAT's reach; return what goes on to the next base chain."""
        entering: dict[int, PacketSet] = {id(base): incoming}
        nominal: dict[int, PacketSet] = {id(base): incoming}
        doubt: dict[int, list[Maybe]] = {id(base): []}
        via_nominal: dict[int, Rule] = {}  # chain -> the first jump whose path conditions bring packets there
        paths: dict[tuple[int, bool], list[Rule]] = {}  # (chain, caught any) -> its evidence path
        open_in: dict[int, PacketSet] = {id(base): incoming}  # what reaches a chain with no `-d X` on the way
        ways: dict[int, list[tuple[Rule, PacketSet]]] = {}  # chain -> each jump that carried packets there, and them
        forked: dict[int, bool] = {}  # chain -> some chain on the way there is reached by more than one jump
        scratch: list[Maybe] = []
        for chain in reversed(post_order(table, base)):
            key = id(chain)
            came, pure = entering.get(key, []), nominal.get(key, [])
            if not pure:
                continue
            reached.add(key)
            summary = self.summaries[key]
            lost = bool(subtract_sets(pure, came)) if came is not pure else False
            inherited = doubt.get(key, [])
            for step in summary.steps:
                rule = step.rule
                if rule.verdict in NAT_VERDICTS:
                    actual = intersect_sets(came, unpack(step.reach)) if came else []
                    exact = step.clean and not lost
                    pure_reach = None if exact else intersect(pure, unpack_box(step.box))
                    if not actual and not pure_reach:
                        continue
                    unsure = (
                        self._doubts(actual, step, summary, inherited)
                        if inherited or step.maybe_count or step.uncertain
                        else []
                    )
                    # The path its own packets took; the chain's one path when no chain on the way is forked.
                    one_way = None if actual and _forked(table, chain, ways, forked) else (key, bool(actual))
                    path = paths.get(one_way) if one_way else None
                    if path is None:
                        path = caught_path(table, chain, actual, ways) if actual else path_to(table, chain, via_nominal)
                        if one_way:
                            paths[one_way] = path
                    # Specific unless some packet it catches came by a path that names no destination.
                    specific = names_destination(rule) or not overlaps(actual, open_in.get(key, []))
                    reaches.append(
                        DnatReach(
                            rule=rule,
                            table=table,
                            hook=hook,
                            family=family,
                            step=step,
                            came=came,
                            pure=None if exact else pure,
                            uncertain_rules=unsure,
                            uncertain=step.uncertain or bool(unsure),
                            path=path,
                            specific=specific,
                        )
                    )
                    continue
                if rule.verdict not in ("jump", "goto"):
                    continue
                target = table.chains[rule.jump]  # type: ignore[index]  # summarised, so it exists
                tkey = id(target)
                box = unpack_box(step.box)
                carried = intersect_sets(intersect(came, box), unpack(step.before)) if came else []
                if carried:
                    entering[tkey] = self._union(entering.get(tkey, []), carried, scratch)
                    ways.setdefault(tkey, []).append((rule, carried))
                    opened = intersect_sets(carried, open_in.get(key, [])) if not names_destination(rule) else []
                    if opened:
                        open_in[tkey] = self._union(open_in.get(tkey, []), opened, scratch)
                    passed = [
                        (r, shared)
                        for r, s in (*inherited, *summary.maybe[: step.maybe_count])
                        if (shared := intersect_sets(carried, s))
                    ]
                    if step.uncertain:
                        passed.append((rule, carried))
                    if passed:
                        doubt[tkey] = [*doubt.get(tkey, []), *passed][:MAX_MAYBE]
                pure_carried = intersect(pure, box)
                if pure_carried:
                    nominal[tkey] = self._union(nominal.get(tkey, []), pure_carried, scratch)
                    via_nominal.setdefault(tkey, rule)
        summary = self.summaries[id(base)]
        return intersect_sets(incoming, self._union(unpack(summary.returned), unpack(summary.accepted), scratch))

    @staticmethod
    def _doubts(actual: PacketSet, step: Step, summary: Summary, inherited: list[Maybe]) -> list[Rule | None]:
        """The uncertain rules that may take some of `actual` before this DNAT, and the DNAT itself if unsure."""
        out: list[Rule | None] = [step.rule] if step.uncertain and actual else []
        for rule, may in (*inherited, *summary.maybe[: step.maybe_count]):
            if not any(rule is r for r in out) and overlaps(actual, may):
                out.append(rule)
        return out


def names_destination(rule: Rule) -> bool:
    """The rule matches one destination address or prefix (not `! -d`, not `0.0.0.0/0`)."""
    daddr = rule.matches.daddr
    return daddr is not None and not daddr.negated and not daddr.network.endswith("/0")


def path_to(table: Table, chain: Chain, via: dict[int, Rule]) -> list[Rule]:
    """The jumps that first brought packets to `chain`, entry first (one path, as evidence)."""
    path: list[Rule] = []
    seen: set[int] = set()
    rule = via.get(id(chain))
    while rule is not None and id(rule) not in seen:
        seen.add(id(rule))
        path.append(rule)
        parent = table.chains.get(rule.chain)
        rule = via.get(id(parent)) if parent is not None else None
    path.reverse()
    return path


def caught_path(
    table: Table, chain: Chain, packets: PacketSet, ways: dict[int, list[tuple[Rule, PacketSet]]]
) -> list[Rule]:
    """The jumps that first brought some of `packets` to `chain`, entry first: at each chain, the first jump
    that carried any of them (a chain reached by several jumps may get these packets by only one)."""
    path: list[Rule] = []
    seen: set[int] = set()
    current: Chain | None = chain
    while current is not None:
        found = next(
            ((rule, carried) for rule, carried in ways.get(id(current), ()) if overlaps(packets, carried)), None
        )
        if found is None or id(found[0]) in seen:
            break
        rule, carried = found
        seen.add(id(rule))
        path.append(rule)
        packets = intersect_sets(packets, carried)
        current = table.chains.get(rule.chain)
    path.reverse()
    return path


def _forked(table: Table, chain: Chain, ways: dict[int, list[tuple[Rule, PacketSet]]], memo: dict[int, bool]) -> bool:
    """True when `chain`, or a chain on the one way there, is reached by more than one jump (walked, not recursed:
    nesting may be deep)."""
    walked: list[int] = []
    current: Chain | None = chain
    found = False
    while current is not None:
        key = id(current)
        if key in memo:
            found = memo[key]
            break
        walked.append(key)
        memo[key] = False  # a loop ends here
        into = ways.get(key, [])
        if len(into) > 1:
            found = True
            break
        current = table.chains.get(into[0][0].chain) if into else None
    for key in walked:
        memo[key] = found
    return found


def post_order(table: Table, root: Chain) -> list[Chain]:
    """`root` and every chain it jumps to, each after every chain below it; loops are cut."""
    order: list[Chain] = []
    state: dict[int, int] = {}  # 1: on the stack, 2: done
    stack: list[tuple[Chain, int]] = [(root, 0)]
    state[id(root)] = 1
    while stack:
        chain, index = stack.pop()
        rules = chain.rules
        while index < len(rules):
            rule = rules[index]
            index += 1
            if rule.verdict in ("jump", "goto") and rule.jump:
                target = table.chains.get(rule.jump)
                if target is not None and id(target) not in state:
                    stack.append((chain, index))
                    stack.append((target, 0))
                    state[id(target)] = 1
                    break
        else:
            state[id(chain)] = 2
            order.append(chain)
    return order


def priority(text: str | None) -> int:
    """A base chain's priority as a number: `dstnat` -100, `dstnat - 10` -110, `-100`; iptables' -100."""
    if not text:
        return -100
    words = text.replace("+", " + ").replace("-", " - ").split()
    try:
        if words[0] in PRIORITIES:
            value = PRIORITIES[words[0]]
            if len(words) == 3:
                value += int(words[2]) * (1 if words[1] == "+" else -1)
            return value
        return int(text.replace(" ", ""))
    except (ValueError, IndexError):
        return -100
