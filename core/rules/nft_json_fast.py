"""The common engine shape of an nft JSON rule, read without the general term path.

`iifname != "br-x" ip daddr 127.0.0.1 tcp dport 8080 counter dnat to 192.0.2.2:80 comment "DNAT"` and
its kin are recorded from decoded JSON (`fast_rule`) or straight from nft's text of the rule
(`raw_fast_rule`). Both give exactly what `build_rules` gives (tests compare them), or None when the
general path must decide.
"""

from __future__ import annotations

import re
from typing import Any

from portscope.core.model import Family, NatTarget, Rule, Verdict
from portscope.core.rules.nft_shortcuts import fast_address, fast_dnat, fast_dport, fast_iface, fast_record
from portscope.core.rules.nft_statements import (
    RuleSite,
)

JSON_STRING = r'[^"\\\x00-\x1f]*'  # the inside of a JSON string without escapes: the text is the value
# --- the common engine shape -------------------------------------------------------------------
# `iifname != "br-x" ip daddr 127.0.0.1 tcp dport 8080 counter dnat to 192.0.2.2:80 comment "DNAT"` and
# its kin (a jump, accept, drop, return or masquerade instead of the dnat) are recorded without terms,
# from decoded JSON (`fast_rule`) or straight from nft's text of the rule (`_RAW_FAST`). Both give
# exactly what `build_rules` gives (tests compare them), or None when the general path must decide.

_FAST_VERDICTS = frozenset({"accept", "drop", "return"})
_FAST_ADDR_PROTOCOLS = frozenset({"ip", "ip6"})
_FAST_ADDR_FIELDS = frozenset({"daddr", "saddr"})
_FAST_PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
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


def raw_fast_rule(rule_json: str, site: RuleSite) -> Rule | None:
    """The record of a rule of the common engine shape read straight from nft's JSON of it
    (`{"rule": {...}}`, laid out as nft prints it), or None to decode it and use `fast_rule` or the
    general path. `site.text` is ignored: the text is rendered here."""
    found = RAW_FAST.fullmatch(rule_json)
    return None if found is None else raw_fast_match(found, site)


def raw_fast_match(found: re.Match[str], site: RuleSite) -> Rule | None:
    """The record of a rule `_RAW_FAST` matched, or None when the general path must decide."""
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
    nat = found_family = None
    if addr is not None:
        found_nat = _add_dnat(parts, nat_family, addr, nat_port)
        if found_nat is None:
            return None
        verdict: Verdict = "dnat"
        nat, found_family = found_nat
    elif jump_kind is not None:
        verdict = jump_kind
        parts.append(f"{jump_kind} {target}")
    else:
        verdict = word
        parts.append(word)
    return _fast_finish(site, parts, fields, verdict, target, nat, found_family, comment)


def fast_rule(expressions: list[Any], comment: Any, site: RuleSite) -> Rule | None:
    """The record of a rule of the common engine shape from its decoded "expr" list and "comment", or None.

    The shape: `iifname|oifname`, `ip|ip6 daddr|saddr` and `tcp|udp|sctp dport` matches against one
    value (`==` or `!=`), counters, then `dnat [ip|ip6] to ADDR[:PORT]`, a jump or goto, accept, drop,
    return or masquerade. Gives exactly what `build_rules` gives for the same rule (`site.text` is
    ignored: the text is rendered here), or None when the general path must decide.
    """
    parts: list[str] = []
    fields: dict[str, object] = {}
    verdict: Verdict | None = None
    jump = nat = nat_family = None
    for stmt in expressions:
        if verdict is not None or stmt.__class__ is not dict or len(stmt) != 1:
            return None
        ((kind, body),) = stmt.items()
        if kind == "match":
            if not _fast_match(body, fields, parts):
                return None
        elif kind == "counter":
            if body.__class__ is str:
                return None
            parts.append("counter")
        elif kind in _FAST_VERDICTS:
            verdict = kind
            parts.append(kind)
        elif kind == "jump" or kind == "goto":
            jump = body.get("target") if body.__class__ is dict else None
            if jump.__class__ is not str:
                return None
            verdict = kind
            parts.append(f"{kind} {jump}")
        elif kind == "dnat":
            found = _fast_dnat(body, parts)
            if found is None:
                return None
            verdict = "dnat"
            nat, nat_family = found
        elif kind == "masquerade" and body is None:
            verdict = "masquerade"
            parts.append("masquerade")
        else:
            return None
    if verdict is None:
        return None
    return _fast_finish(
        site, parts, fields, verdict, jump, nat, nat_family, comment if comment.__class__ is str else None
    )


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


def _fast_match(body: Any, fields: dict[str, object], parts: list[str]) -> bool:
    """One `{"match": ...}` of the common shape into `fields` and `parts`; False if it is not one."""
    if body.__class__ is not dict:
        return False
    op = body.get("op", "==")
    if op != "==" and op != "!=":
        return False
    negated = op == "!="
    left, right = body.get("left"), body.get("right")
    if left.__class__ is not dict or len(left) != 1:
        return False
    selector = left.get("payload")
    if selector is not None:
        if selector.__class__ is not dict:
            return False
        protocol, field = selector.get("protocol"), selector.get("field")
        if protocol.__class__ is not str or field.__class__ is not str:
            return False
        if field == "dport" and protocol in _FAST_PORT_PROTOCOLS:
            port = _fast_port(right)
            return port is not None and _add_dport(fields, parts, protocol, negated, port)
        if field in _FAST_ADDR_FIELDS and protocol in _FAST_ADDR_PROTOCOLS:
            return right.__class__ is str and _add_address(fields, parts, protocol, field, negated, right)
        return False
    selector = left.get("meta")
    key = selector.get("key") if selector.__class__ is dict else None
    if key != "iifname" and key != "oifname":
        return False
    return right.__class__ is str and _add_iface(fields, parts, key, negated, right)


def _fast_port(right: Any) -> str | None:
    """A port or `{"range": [first, last]}` as nft prints it; None for anything else."""
    if right.__class__ is int:
        return str(right)
    if right.__class__ is dict and len(right) == 1:
        bounds = right.get("range")
        if bounds.__class__ is list and len(bounds) == 2 and bounds[0].__class__ is int and bounds[1].__class__ is int:
            return f"{bounds[0]}-{bounds[1]}"
    return None


def _fast_dnat(body: Any, parts: list[str]) -> tuple[NatTarget, Family | None] | None:
    """`{"dnat": {["family": "ip"|"ip6",] "addr": ADDR[, "port": PORT]}}`."""
    if body.__class__ is not dict or not body.keys() <= {"family", "addr", "port"}:
        return None
    family, addr, port = body.get("family"), body.get("addr"), body.get("port", "")
    if (family is not None and family != "ip" and family != "ip6") or addr.__class__ is not str:
        return None
    if port.__class__ is int:
        return _add_dnat(parts, family, addr, str(port))
    return _add_dnat(parts, family, addr, None) if port == "" else None


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


def _add_dnat(
    parts: list[str], family: str | None, addr: str, port: str | None
) -> tuple[NatTarget, Family | None] | None:
    """`dnat [ip|ip6] to ADDR[:PORT]` as nft prints it from the JSON's addr and port."""
    target = addr if port is None else f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    found = fast_dnat(family, target)
    if found is not None:
        parts.append(f"dnat {family} to {target}" if family else f"dnat to {target}")
    return found
