"""Read iptables-legacy tables through libiptc (python-iptables) when `iptables-legacy-save` is missing.

The rules are rendered as `iptables-save` lines and parsed by the one iptables parser, so both paths
give identical records. Bulk reads prefer `iptables-legacy-save`: walking 10,000 rules through
libiptc is far slower than letting the tool print them (see the README).
"""

from __future__ import annotations

import ipaddress
import re

from portscope.core.model import Family

_ANY = {"0.0.0.0/0.0.0.0", "::/0", "0.0.0.0/0"}


def legacy_save_text(family: Family, tables: list[str]) -> str:
    """`iptables-legacy-save`-like text of the given tables, read through libiptc."""
    import iptc  # python-iptables: only on this fallback path

    table_class = iptc.Table6 if family == "ipv6" else iptc.Table
    out: list[str] = []
    for name in tables:
        table = table_class(name)
        table.autocommit = False
        table.refresh()
        out.append(f"*{name}")
        chains = list(table.chains)
        for chain in chains:
            policy = chain.get_policy().name if table.builtin_chain(chain.name) else "-"
            out.append(f":{chain.name} {policy} [0:0]")
        user_chains = {c.name for c in chains}
        for chain in chains:
            out.extend(f"-A {chain.name} {render_rule(rule, user_chains)}".rstrip() for rule in chain.rules)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def render_rule(rule, user_chains: set[str]) -> str:
    """One python-iptables rule as the options `iptables-save` would print after `-A CHAIN`."""
    parts: list[str] = []
    for option, value in (("-s", rule.src), ("-d", rule.dst)):
        if value and value not in _ANY:
            parts.append(_negatable(option, _cidr(value.lstrip("!")), value.startswith("!")))
    for option, value in (("-i", rule.in_interface), ("-o", rule.out_interface)):
        if value:
            parts.append(_negatable(option, value.lstrip("!"), value.startswith("!")))
    if rule.protocol and rule.protocol not in ("ip", "all", "0"):
        parts.append(_negatable("-p", rule.protocol.lstrip("!"), rule.protocol.startswith("!")))
    for match in rule.matches:
        parts.append(f"-m {match.name}")
        parts.extend(_parameters(match.get_all_parameters()))
    target = rule.target
    if target is not None and target.name:
        if target.name in user_chains:
            parts.append(f"{'-g' if target.goto else '-j'} {target.name}")
        else:
            parts.append(f"-j {target.name}")
            parts.extend(_parameters(target.get_all_parameters()))
    return " ".join(parts)


def _parameters(params: dict[str, list[str]]) -> list[str]:
    out = []
    for key, values in params.items():
        negated = bool(values) and values[0] == "!"
        args = [_quote(v) for v in (values[1:] if negated else values)]
        out.append(" ".join(["!"] * negated + [f"--{key}", *args]))
    return out


def _negatable(option: str, value: str, negated: bool) -> str:
    return f"{'! ' if negated else ''}{option} {value}"


def _cidr(text: str) -> str:
    """`10.0.0.0/255.0.0.0` -> `10.0.0.0/8` (python-iptables gives IPv4 netmasks)."""
    try:
        return ipaddress.ip_network(text, strict=False).with_prefixlen
    except ValueError:
        return text


def _quote(value: str) -> str:
    """Quote as iptables-save does; libiptc hands back `\\'` already escaped but a lone `\\` not."""
    value = re.sub(r"\\(?!['\"])", r"\\\\", value)
    if value and not any(c in value for c in " \"'\t"):
        return value
    return '"' + value.replace('"', '\\"') + '"'
