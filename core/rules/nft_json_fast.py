"""The common engine shape of an nft JSON rule, recorded straight from nft's text of it.

`{"rule": {... "expr": [iifname != "br-x", ip daddr 127.0.0.1, tcp dport 8080, counter, dnat to
192.0.2.2:80], "comment": "DNAT"}}` and its kin (a jump, goto, accept, drop, return or masquerade
instead of the dnat), laid out exactly as nft prints them, are matched by one regular expression and
recorded without decoding the JSON or making terms. `raw_fast_rule` gives exactly what the general
path (`json.loads`, `statement_term`, `build_rules`) gives for the same rule, or None when the
general path must decide; tests/unit/test_read_fast_paths.py and test_nft_json.py hold them equal.
It is kept for its measured gain at 10,000 published ports (README, "How portscope reads the host").
"""

from __future__ import annotations

import re

from portscope.core.model import Family, NatTarget, Rule, Verdict
from portscope.core.rules.nft_shortcuts import fast_address, fast_dport, fast_iface, fast_record, fast_verdict
from portscope.core.rules.nft_statements import RuleSite

JSON_STRING = r'[^"\\\x00-\x1f]*'  # the inside of a JSON string without escapes: the text is the value
_NUMBER = r"(?:0|[1-9][0-9]{0,19})"  # a JSON integer json.loads takes (longer ones are decoded, and refused)
_ADDRESS_MATCH = (
    rf'(?:\{{"match": \{{"op": "(==|!=)", "left": \{{"payload": \{{"protocol": "(ip6?)", "field": "([ds]addr)"\}}\}}, '
    rf'"right": "({JSON_STRING})"\}}\}}, )?'
)
RAW_FAST = re.compile(
    rf'\{{"rule": \{{"family": "{JSON_STRING}", "table": "{JSON_STRING}", "chain": "{JSON_STRING}", '
    rf'"handle": {_NUMBER}, '
    rf'(?:"comment": "({JSON_STRING})", )?"expr": \['
    rf'(?:\{{"match": \{{"op": "(==|!=)", "left": \{{"meta": \{{"key": "(iifname|oifname)"\}}\}}, '
    rf'"right": "({JSON_STRING})"\}}\}}, )?'
    rf"{_ADDRESS_MATCH}{_ADDRESS_MATCH}"
    rf'(?:\{{"match": \{{"op": "(==|!=)", "left": \{{"payload": \{{"protocol": "(tcp|udp|sctp)", '
    rf'"field": "dport"\}}\}}, "right": ({_NUMBER})\}}\}}, )?'
    rf'(\{{"counter": \{{"packets": {_NUMBER}, "bytes": {_NUMBER}\}}\}}, )?'
    rf'(?:\{{"dnat": \{{(?:"family": "(ip6?)", )?"addr": "({JSON_STRING})"(?:, "port": ({_NUMBER}))?\}}\}}'
    rf'|\{{"(jump|goto)": \{{"target": "({JSON_STRING})"\}}\}}'
    rf'|\{{"(accept|drop|return|masquerade)": null\}})'
    r"\]\}\}"
)

#: RAW_FAST's groups of the destination-port match: its operator and its port.
PORT_OP_GROUP, PORT_GROUP = 13, 15


def raw_fast_rule(rule_json: str, site: RuleSite) -> Rule | None:
    """The record of a rule of the common engine shape read straight from nft's JSON of it
    (`{"rule": {...}}`, laid out as nft prints it), or None to decode it and take the general path.
    `site.text` is ignored: the text is rendered here."""
    found = RAW_FAST.fullmatch(rule_json)
    return None if found is None else raw_fast_match(found, site)


def raw_fast_match(found: re.Match[str], site: RuleSite) -> Rule | None:
    """The record of a rule `RAW_FAST` matched, or None when the general path must decide."""
    groups = found.groups()
    comment, iface_op, iface, name = groups[:4]
    port_op, protocol, port, counter, nat_family, addr, nat_port, jump_kind, target, word = groups[12:]
    parts: list[str] = []
    fields: dict[str, object] = {}
    if iface is not None and not _add_iface(fields, parts, iface, iface_op == "!=", name):
        return None
    for at in (4, 8):
        if groups[at + 1] is not None:
            op, ip, field, network = groups[at : at + 4]
            if not _add_address(fields, parts, ip, field, op == "!=", network):
                return None
    if protocol is not None and not _add_dport(fields, parts, protocol, port_op == "!=", port):
        return None
    if counter is not None:
        parts.append("counter")
    nat_target = None if addr is None else _target(addr, nat_port)
    found_verdict = fast_verdict(nat_family, nat_target, jump_kind, word)
    if found_verdict is None:
        return None
    verdict, nat, found_family = found_verdict
    if nat_target is not None:
        parts.append(f"dnat {nat_family} to {nat_target}" if nat_family else f"dnat to {nat_target}")
    else:
        parts.append(f"{jump_kind} {target}" if jump_kind is not None else word)
    return _fast_finish(site, parts, fields, verdict, target, nat, found_family, comment)


def _fast_finish(
    site: RuleSite,
    parts: list[str],
    fields: dict[str, object],
    verdict: Verdict,
    jump: str | None,
    nat: NatTarget | None,
    nat_family: Family | None,
    comment: str | None,
) -> Rule:
    if comment is not None:
        parts.append(f'comment "{comment}"')
    return fast_record(site, " ".join(parts), fields, verdict, jump, nat, nat_family, comment)


def _add_iface(fields: dict[str, object], parts: list[str], key: str, negated: bool, name: str) -> bool:
    if name.startswith("@") or not fast_iface(fields, key, negated, name):  # `@name`: a named set
        return False
    parts.append(f'{key} != "{name}"' if negated else f'{key} "{name}"')
    return True


def _add_address(fields: dict[str, object], parts: list[str], ip: str, field: str, negated: bool, network: str) -> bool:
    if not fast_address(fields, ip, field, negated, network):
        return False
    parts.append(f"{ip} {field} != {network}" if negated else f"{ip} {field} {network}")
    return True


def _add_dport(fields: dict[str, object], parts: list[str], protocol: str, negated: bool, port: str) -> bool:
    if not fast_dport(fields, protocol, negated, port):
        return False
    parts.append(f"{protocol} dport != {port}" if negated else f"{protocol} dport {port}")
    return True


def _target(addr: str, port: str | None) -> str:
    """`dnat to`'s target as nft prints it from the JSON's addr and port."""
    return addr if port is None else f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
