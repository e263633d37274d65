"""Checks on the rules alone: shadowed DNATs, dead jumps, two firewall backends at once."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from collections.abc import Iterable

from portscope.core.findings import Finding
from portscope.core.model import Chain, Rule, Table
from portscope.core.reach.describe import difference_text, ports_text
from portscope.core.reach.firstmatch import post_order
from portscope.core.reach.space import DPORT, unpack
from portscope.core.resolve import Shadow


def _where(r: Rule) -> str:
    return f"{r.backend} {r.family} {r.table} {r.chain} #{r.position}"


def shadowed_rules(shadows: Iterable[Shadow]) -> list[Finding]:
    """A DNAT that earlier verdicts (a DNAT, a nat ACCEPT or DROP, a goto) take packets from, wholly or partly.

    First match decides: packets a rule before it takes, in its own chain or in a chain jumped to
    before it, never reach it. A RETURN alone is no finding: it is how a chain limits itself.
    """
    by_loser: dict[int, list[Shadow]] = {}
    for s in shadows:
        by_loser.setdefault(id(s.loser), []).append(s)
    return [_shadow_finding(group[0], [s.hook for s in group]) for group in by_loser.values()]


def _shadow_finding(s: Shadow, hooks: list[str]) -> Finding:
    loser = s.loser
    winners = s.winners.verdicts
    first = winners[0]
    m = loser.matches
    port = m.dports[0].first if m.dports else None
    proto = m.protocol or "all"
    named = "; ".join(f"{_where(w)} ({_target(w) if w.nat else w.verdict.upper()})" for w in winners[:3])
    elsewhere = any(w.chain != loser.chain or w.table != loser.table for w in winners)
    if s.whole:
        state, left = "is dead", "no packet to this host reaches it"
    else:
        state, left = "is partly shadowed", "what still reaches it: " + _left_text(s)
    through_a_jump = elsewhere and first.chain != loser.chain
    jump = _jump_towards(s.table, loser, first) if through_a_jump else None
    if through_a_jump:
        before = f"insert it before {_where(jump)} ({jump.text})" if jump is not None else "insert it earlier"
        fix = f"{delete_command(loser, 'if it is not wanted')}; or, to make it win, {before}"
    else:
        fix = delete_command(loser, "if it is not wanted") + "; or move it above the rule that wins"
    return Finding(
        kind="shadowed-rule",
        severity="warning",
        title=f"DNAT for {proto} port {port if port is not None else '*'} {state}: an earlier rule catches its packets",
        explanation=(
            f"Netfilter stops at the first verdict. On the {' and '.join(hooks)} hook{'s' if len(hooks) > 1 else ''}, "
            f"{named} takes packets that "
            f"{_where(loser)} would catch ({_target(loser)}), so it never sees them; {left}."
        ),
        fix=fix,
        rules=[*winners[:3], *s.path, *([jump] if jump is not None else []), loser],  # the winners first
        port=port,
        protocol=proto,
    )


def _jump_towards(table: Table, loser: Rule, winner: Rule) -> Rule | None:
    """The jump or goto before `loser` in its own chain that leads to `winner`'s chain."""
    home = table.chains.get(loser.chain)
    if home is None:
        return None
    for rule in home.rules:
        if rule is loser:
            break
        target = table.chains.get(rule.jump or "") if rule.verdict in ("jump", "goto") else None
        if target is not None and any(c.name == winner.chain for c in post_order(table, target)):
            return rule
    return None


def _left_text(s: Shadow) -> str:
    ports, left = 0, unpack(s.left)
    for box in left:
        ports |= box[DPORT]
    return f"ports {ports_text(s.space, ports)}, {difference_text(s.space, left, unpack(s.wanted))}"


def _target(rule: Rule) -> str:
    if rule.nat is None:
        return "?"
    address = rule.nat.address or "this host"
    return f"{address}:{rule.nat.ports}" if rule.nat.ports else address


def delete_command(rule: Rule, note: str = "") -> str:
    """The command that removes `rule` (`iptables -t T -D CHAIN N`, or how to find its nft handle)."""
    table, chain = shlex.quote(rule.table), shlex.quote(rule.chain)  # names from the host: quoted for a shell
    if rule.backend == "nftables":
        return f"nft -a list chain {rule.family} {table} {chain}   # then: nft delete rule … handle N"
    tool = "ip6tables" if rule.family == "ipv6" else "iptables"
    if rule.backend == "iptables-legacy":
        tool += "-legacy"
    return f"{tool} -t {table} -D {chain} {rule.position}" + (f"   # {note}" if note else "")


#: Chains an engine makes for one container or port (an empty one is left over), unlike the standing
#: hook chains (DOCKER, DOCKER-USER, KUBE-SERVICES) that are empty on a quiet host.
PER_ITEM_CHAIN = re.compile(r"-DN-|^CNI-[0-9a-f]{16,}$|^KUBE-(SEP|SVC|EXT|FW|XLB)-|_dnat$|^NETAVARK-[0-9A-F]{10,}$")


def dead_jumps(tables: Iterable[Table]) -> list[Finding]:
    """A jump to a missing chain, or to an empty per-container chain: what a half-cleaned engine leaves."""
    out = []
    for table in tables:
        for chain in table.chains.values():
            for rule in chain.rules:
                if rule.verdict not in ("jump", "goto") or not rule.jump:
                    continue
                target = table.chains.get(rule.jump)
                if target is not None and (target.rules or not PER_ITEM_CHAIN.search(rule.jump)):
                    continue
                state = "does not exist" if target is None else "is empty"
                out.append(
                    Finding(
                        kind="dead-jump",
                        severity="warning",
                        title=f"{rule.chain} jumps to {rule.jump}, which {state}",
                        explanation=(
                            f"Rule {rule.position} of {rule.backend} {rule.family} {rule.table} {rule.chain} sends "
                            f"packets to chain {rule.jump}, which {state}. Nothing happens there; this is usually "
                            "what a crashed or half-cleaned engine (Docker, CNI, Podman) leaves behind."
                        ),
                        fix=delete_command(rule, "if the dead rule is not wanted"),
                        rules=[rule],
                    )
                )
    return out


def two_backends(tables: Iterable[Table]) -> list[Finding]:
    """Rules in both iptables-legacy and nf_tables: both run, and `iptables` may show the other one.

    The evidence is the first few rules of the smaller side, usually the odd one out.
    """
    tables = list(tables)
    sides = {_side(table) for table in tables if any(chain.size for chain in table.chains.values())}
    if not {"legacy", "nft"} <= sides:
        return []  # one side has no rules: nothing is counted (counting nft rules parses them)
    counts: dict[str, int] = defaultdict(int)
    for table in tables:
        counts[_side(table)] += sum(_count(table, chain) for chain in table.chains.values())
    legacy, nft = counts.get("legacy", 0), counts.get("nft", 0)
    if not legacy or not nft:
        return []
    odd = "legacy" if legacy <= nft else "nft"
    samples: list[Rule] = []  # the first rules of the odd side: only the chains they come from are parsed
    for table in (t for t in tables if _side(t) == odd):
        for chain in table.chains.values():
            if chain.size and len(samples) < _SAMPLES:
                samples.extend(chain.rules[: _SAMPLES - len(samples)])
    return [
        Finding(
            kind="two-backends",
            severity="warning",
            title=f"rules in both iptables-legacy ({legacy}) and nf_tables ({nft})",
            explanation=(
                "The kernel runs both rule sets, one after the other. The `iptables` command shows only one of "
                "them (see `iptables -V`), so a rule you cannot find may be in the other. Usually one engine was "
                f"started with a different iptables than the rest of the system; the {odd} side has fewer rules, "
                "its first ones are listed as evidence."
            ),
            fix="iptables-legacy-save; iptables-nft-save   # compare, then pick one backend "
            "(update-alternatives --config iptables) and restart the engines",
            rules=samples,
        )
    ]


_SAMPLES = 5


def _count(table: Table, chain: Chain) -> int:
    """The chain's rules; an iptables chain's are counted without parsing them (one rule per line)."""
    return chain.size if table.backend in ("iptables-nft", "iptables-legacy") else len(chain.rules)


def _side(table: Table) -> str:
    return "legacy" if table.backend == "iptables-legacy" else "nft" if table.backend != "dump" else "dump"
