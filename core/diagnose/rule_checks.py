"""Checks on the rules alone: shadowed DNATs, dead jumps, two firewall backends at once."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from core.findings import Finding
from core.model import Rule, Table
from core.resolve import Catch


def _where(c: Catch) -> str:
    r = c.rule
    return f"{r.backend} {r.family} {r.table} {r.chain} #{r.position}"


def shadowed_rules(catches: Iterable[Catch]) -> list[Finding]:
    """A DNAT whose every packet an earlier DNAT of the same hook already catches is dead.

    Catches are bucketed by (table, hook, protocol, first port), so each one is compared only
    with the earlier catches of its own port plus the few that catch a port range or all ports.
    """
    single: dict[tuple, list[Catch]] = defaultdict(list)
    wide: dict[tuple, list[Catch]] = defaultdict(list)
    dead: dict[int, tuple[Catch, Catch]] = {}
    for c in catches:
        cond = c.condition
        group = (id(c.table), c.hook)
        ports = cond.dports or ()
        candidates = [*wide[group]]
        if len(ports) == 1 and ports[0].first == ports[0].last:
            candidates.extend(single[(*group, ports[0].first)])
        for earlier in candidates:
            if earlier.rule is not c.rule and earlier.condition.covers(cond) and not earlier.condition.conditional:
                dead.setdefault(id(c.rule), (earlier, c))
                break
        if len(ports) == 1 and ports[0].first == ports[0].last:
            single[(*group, ports[0].first)].append(c)
        else:
            wide[group].append(c)
    return [_shadow_finding(winner, loser) for winner, loser in dead.values()]


def _shadow_finding(winner: Catch, loser: Catch) -> Finding:
    w, lo = winner.rule, loser.rule
    port = loser.condition.dports[0].first if loser.condition.dports else None
    proto = loser.condition.protocol or "all"
    return Finding(
        kind="shadowed-rule",
        severity="warning",
        title=f"DNAT for {proto} port {port if port is not None else '*'} is dead: an earlier rule catches it",
        explanation=(
            f"Two DNAT rules capture the same packets on the {loser.hook} hook. The kernel evaluates "
            f"{_where(winner)} first (chain order), so it sends them to {_target(w)}; {_where(loser)} never "
            f"matches there and its target {_target(lo)} gets nothing from that hook."
        ),
        fix=delete_command(lo, "if the dead rule is not wanted"),
        rules=[*winner.path, *loser.path],
        port=port,
        protocol=proto,
    )


def _target(rule: Rule) -> str:
    if rule.nat is None:
        return "?"
    address = rule.nat.address or "this host"
    return f"{address}:{rule.nat.ports}" if rule.nat.ports else address


def delete_command(rule: Rule, note: str = "") -> str:
    """The command that removes `rule` (`iptables -t T -D CHAIN N`, or how to find its nft handle)."""
    if rule.backend == "nftables":
        return f"nft -a list chain {rule.family} {rule.table} {rule.chain}   # then: nft delete rule … handle N"
    tool = "ip6tables" if rule.family == "ipv6" else "iptables"
    if rule.backend == "iptables-legacy":
        tool += "-legacy"
    return f"{tool} -t {rule.table} -D {rule.chain} {rule.position}" + (f"   # {note}" if note else "")


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
    counts: dict[str, int] = defaultdict(int)
    samples: dict[str, list[Rule]] = defaultdict(list)
    for table in tables:
        side = "legacy" if table.backend == "iptables-legacy" else "nft" if table.backend != "dump" else "dump"
        for chain in table.chains.values():
            counts[side] += len(chain.rules)
            room = _SAMPLES - len(samples[side])
            if room > 0:
                samples[side].extend(chain.rules[:room])
    legacy, nft = counts.get("legacy", 0), counts.get("nft", 0)
    if not legacy or not nft:
        return []
    odd = "legacy" if legacy <= nft else "nft"
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
            rules=samples[odd],
        )
    ]


_SAMPLES = 5
