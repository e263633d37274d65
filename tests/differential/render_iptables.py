"""The abstract ruleset as `iptables-restore` input for the nat table (iptables-nft and iptables-legacy alike)."""

from __future__ import annotations

from tests.differential.model import Match, Ports, Rule, Ruleset

#: Always loaded: the host's own 127.0.0.1 probes that a DNAT sends to a responder leave with a routable source.
HEADER = ("*nat", *(f":{chain} ACCEPT [0:0]" for chain in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")))
POSTROUTING = "-A POSTROUTING -s 127.0.0.0/8 ! -o lo -j MASQUERADE"


def render(ruleset: Ruleset) -> str:
    """`*nat` ... `COMMIT`; raises ValueError for a rule iptables cannot express (DROP in nat)."""
    lines = [*HEADER, *(f":{name} - [0:0]" for name in ruleset.user_chains)]
    for name, rules in ruleset.chains.items():
        lines += [f"-A {name} {rule_args(rule)}" for rule in rules]
    lines += [POSTROUTING, "COMMIT", ""]
    return "\n".join(lines)


def empty() -> str:
    """A nat table with nothing in it (restoring it deletes every rule and user chain)."""
    return "\n".join([*HEADER, "COMMIT", ""])


def rule_args(rule: Rule) -> str:
    return " ".join([*_matches(rule.match), *_target(rule)])


def _neg(negated: bool) -> list[str]:
    return ["!"] if negated else []


def _matches(m: Match) -> list[str]:
    out: list[str] = []
    if m.saddr is not None:
        out += [*_neg(m.saddr_negated), "-s", m.saddr]
    if m.daddr is not None:
        out += [*_neg(m.daddr_negated), "-d", m.daddr]
    if m.iif is not None:
        out += [*_neg(m.iif_negated), "-i", m.iif]
    if m.protocol is not None:
        out += [*_neg(m.protocol_negated), "-p", m.protocol]
    if m.ports is not None:
        if m.protocol is None or m.protocol_negated:
            raise ValueError("a port match needs a protocol")
        out += _ports(m.protocol, m.ports, m.ports_negated)
    if m.dst_local is not None:
        out += ["-m", "addrtype", *_neg(not m.dst_local), "--dst-type", "LOCAL"]
    if m.mark is not None:
        out += ["-m", "mark", "--mark", hex(m.mark)]
    return out


def _ports(protocol: str, ports: Ports, negated: bool) -> list[str]:
    text = ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ports.ranges)
    if ports.style == "multi":
        return ["-m", "multiport", *_neg(negated), "--dports", text]
    return ["-m", protocol, *_neg(negated), "--dport", text]


def _target(rule: Rule) -> list[str]:
    match rule.verdict:
        case "dnat":
            to = rule.to_ip if rule.to_port is None else f"{rule.to_ip}:{rule.to_port}"
            return ["-j", "DNAT", "--to-destination", str(to)]
        case "return":
            return ["-j", "RETURN"]
        case "accept":
            return ["-j", "ACCEPT"]
        case "jump":
            return ["-j", str(rule.chain)]
        case "goto":
            return ["-g", str(rule.chain)]
    raise ValueError(f"iptables' nat table has no {rule.verdict!r}")
