"""The abstract ruleset as native nft text: one `table ip nat` with lower-case base chains."""

from __future__ import annotations

from tests.differential.model import Match, Ports, Rule, Ruleset

TABLE = "nat"
BASE_CHAINS = {
    "PREROUTING": ("prerouting", "type nat hook prerouting priority dstnat; policy accept;"),
    "OUTPUT": ("output", "type nat hook output priority -100; policy accept;"),
}
POSTROUTING = (
    "    chain postrouting {\n"
    "        type nat hook postrouting priority srcnat; policy accept;\n"
    '        ip saddr 127.0.0.0/8 oifname != "lo" masquerade\n'
    "    }\n"
)


def render(ruleset: Ruleset) -> str:
    """`table ip nat { ... }`, as `nft -f` reads it."""
    out = [f"table ip {TABLE} {{\n"]
    for name, rules in ruleset.chains.items():
        chain, header = BASE_CHAINS.get(name, (name, None))
        out.append(f"    chain {chain} {{\n")
        if header:
            out.append(f"        {header}\n")
        out += [f"        {rule_text(rule)}\n" for rule in rules]
        out.append("    }\n")
    out += [POSTROUTING, "}\n"]
    return "".join(out)


def loadable(text: str) -> str:
    """`text` preceded by what deletes the previous table: one transaction, so a refused load changes nothing."""
    return f"table ip {TABLE}\ndelete table ip {TABLE}\n{text}"


def clear() -> str:
    """Removes the table (if any)."""
    return f"table ip {TABLE}\ndelete table ip {TABLE}\n"


def rule_text(rule: Rule) -> str:
    return " ".join([*_matches(rule.match), _verdict(rule)])


def _op(negated: bool) -> str:
    return "!= " if negated else ""


def _iifname(pattern: str) -> str:
    return f'"{pattern[:-1]}*"' if pattern.endswith("+") else f'"{pattern}"'


def _matches(m: Match) -> list[str]:
    out: list[str] = []
    if m.iif is not None:
        out.append(f"iifname {_op(m.iif_negated)}{_iifname(m.iif)}")
    if m.saddr is not None:
        out.append(f"ip saddr {_op(m.saddr_negated)}{_addr(m.saddr)}")
    if m.daddr is not None:
        out.append(f"ip daddr {_op(m.daddr_negated)}{_addr(m.daddr)}")
    if m.ports is not None:
        if m.protocol is None or m.protocol_negated:
            raise ValueError("a port match needs a protocol")
        out.append(f"{m.protocol} dport {_op(m.ports_negated)}{_ports(m.ports)}")
    elif m.protocol is not None:
        out.append(f"meta l4proto {_op(m.protocol_negated)}{m.protocol}")
    if m.dst_local is not None:
        out.append(f"fib daddr type {_op(not m.dst_local)}local")
    if m.mark is not None:
        out.append(f"meta mark {m.mark:#010x}")
    return out


def _addr(cidr: str) -> str:
    return cidr.removesuffix("/32")


def _ports(ports: Ports) -> str:
    items = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports.ranges]
    return "{ " + ", ".join(items) + " }" if ports.style == "multi" else items[0]


def _verdict(rule: Rule) -> str:
    match rule.verdict:
        case "dnat":
            return f"dnat to {rule.to_ip}" + ("" if rule.to_port is None else f":{rule.to_port}")
        case "jump" | "goto":
            return f"{rule.verdict} {rule.chain}"
    return rule.verdict  # return, accept, drop
