"""What an nftables rule means, shared by the text (`nft list`) and JSON (`nft -j list`) readers.

Both readers turn a rule into the same list of *terms*, with every key and value written the
way `nft list ruleset` prints it (`tcp dport`, `"br-x"`, `{ 80, 443 }`, `@set`). This module
alone decides what the terms mean, so one ruleset read as text or as JSON gives equal records.
Anything it does not model is kept verbatim in `Matches.other`: such a rule is conditional.
"""

from __future__ import annotations

import gc
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import NamedTuple

from portscope.core.model import (
    UNCONDITIONAL,
    AddrMatch,
    Family,
    IfaceMatch,
    Matches,
    NatTarget,
    PortRange,
    Rule,
    TableFamily,
    Verdict,
)

#: A value as nft prints it: one token (`8080`, `"br-x"`, `10.0.0.0/8`, `@name`) or an anonymous set's elements.
Value = str | tuple[str, ...]
#: Named sets and maps of one table: name -> element texts (a map element is `KEY : DATA`).
Sets = Mapping[str, tuple[str, ...]]


class Match(NamedTuple):
    """A relational expression `KEY [OP] VALUE`; `op` is "" when nft prints none (`==`, or `in` for flags)."""

    key: str
    op: str
    value: Value
    text: str


class VerdictStmt(NamedTuple):
    """`accept`, `drop`, `return`, `continue`, `jump X`, `goto X`, `reject ...`, `queue ...`."""

    name: str
    target: str | None
    text: str


class NatStmt(NamedTuple):
    """`dnat|snat|redirect|masquerade [ip|ip6] [to TARGET]`.

    `target` is `ADDR[:PORT]`, `[ADDR6]:PORT` or `:PORT` as printed; "" when no `to` is given;
    None when it is an expression nft computes per packet (a map lookup).
    """

    kind: str
    family: str | None
    target: str | None
    text: str


class VmapStmt(NamedTuple):
    """`KEY vmap @name` or `KEY vmap { K : VERDICT, ... }`."""

    key: str
    value: Value
    text: str


class Comment(NamedTuple):
    """`comment "..."`; `value` is the text between the quotes."""

    value: str
    text: str


class Note(NamedTuple):
    """Any other statement. kind: "counter"/"log" (no effect on matching), "mark" (`meta mark set`),
    "effect" (another side effect: `ct mark set`, `notrack`, an xt target) or "cond" (a condition
    portscope does not model, e.g. `limit`, kept in `Matches.other`)."""

    kind: str
    text: str


Term = Match | VerdictStmt | NatStmt | VmapStmt | Comment | Note

#: nft family keyword -> portscope table family; other families (arp, bridge, netdev) are not read.
TABLE_FAMILIES: dict[str, TableFamily] = {"ip": "ipv4", "ip6": "ipv6", "inet": "inet"}
SKIPPED_FAMILIES = frozenset({"arp", "bridge", "netdev"})
NAT_KINDS = frozenset({"dnat", "snat", "redirect", "masquerade"})
VERDICT_NAMES = frozenset({"accept", "drop", "return", "continue", "jump", "goto", "reject", "queue"})

_PORT_KEYS = {f"{p} dport": p for p in ("tcp", "udp", "sctp", "dccp", "udplite")} | {"th dport": None}
_PROTO_KEYS: dict[str, Family | None] = {"meta l4proto": None, "ip protocol": "ipv4", "ip6 nexthdr": "ipv6"}
_ADDR_KEYS: dict[str, Family] = {"ip daddr": "ipv4", "ip saddr": "ipv4", "ip6 daddr": "ipv6", "ip6 saddr": "ipv6"}
_IFACE_KEYS = {"iifname": "in_iface", "iif": "in_iface", "oifname": "out_iface", "oif": "out_iface"}
NAT_FAMILIES: dict[str, Family] = {"ip": "ipv4", "ip6": "ipv6"}
_NFPROTO_FAMILIES: dict[str, Family] = {"ipv4": "ipv4", "ipv6": "ipv6"}
_MODEL_VERDICTS: dict[str, Verdict] = {
    name: name for name in ("accept", "drop", "return", "jump", "goto", "reject", "dnat", "snat", "redirect")
} | {"masquerade": "masquerade"}
_EQ_OPS = frozenset({"", "==", "in"})

# nft's standard priority names, and the hooks (of ip/ip6/inet chains) where it prints them:
# nft >= 1.0.8 also names dstnat on output and srcnat on input (nft bugzilla 1694).
_STD_PRIORITIES = (
    (-300, "raw", None, None),
    (-150, "mangle", None, None),
    (-100, "dstnat", frozenset({"prerouting"}), "output"),
    (0, "filter", None, None),
    (50, "security", None, None),
    (100, "srcnat", frozenset({"postrouting"}), "input"),
)


def priority_name(prio: int, hook: str | None, nat_names_on_io: bool = True) -> str:
    """Print a numeric chain priority as `nft list` does: `dstnat`, `filter - 5`, or the number."""
    for base, name, hooks, newer_hook in _STD_PRIORITIES:
        offset = prio - base
        if abs(offset) > 10:
            continue
        if hooks is not None and hook not in hooks and not (nat_names_on_io and hook == newer_hook):
            break
        if offset == 0:
            return name
        return f"{name} {'+' if offset > 0 else '-'} {abs(offset)}"
    return str(prio)


def unquote(token: str) -> str:
    """`"br-x"` -> `br-x`; other tokens unchanged."""
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return token[1:-1]
    return token


def split_elements(body: str) -> tuple[str, ...]:
    """Split the inside of `{ a, b, "c,d" }` at top-level commas, honouring quoted strings."""
    if '"' not in body:
        parts = body.split(",")
    else:
        parts, start, quoted = [], 0, False
        for i, char in enumerate(body):
            if char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                parts.append(body[start:i])
                start = i + 1
        parts.append(body[start:])
    return tuple(p for p in (part.strip() for part in parts) if p)


def verdict_from_text(text: str) -> VerdictStmt | None:
    """A verdict map's data (`jump chain-a`, `accept`) as a statement; None if it is not a verdict."""
    words = text.split()
    if not words or words[0] not in VERDICT_NAMES:
        return None
    target = unquote(words[1]) if words[0] in ("jump", "goto") and len(words) > 1 else None
    return VerdictStmt(words[0], target, text)


#: Entries per memo below: values repeat across rules, and the memos must not grow unbounded.
_CACHE_SIZE = 1 << 16


@lru_cache(maxsize=_CACHE_SIZE)
def parse_port_range(text: str) -> PortRange | None:
    """`80` or `8000-8010` -> PortRange; None for anything else."""
    first, dash, last = text.partition("-")
    last = last if dash else first
    if first.isascii() and last.isascii() and first.isdigit() and last.isdigit() and len(first) <= 5 >= len(last):
        lo, hi = int(first), int(last)
        if lo <= hi <= 65535:
            return PortRange(lo, hi)
    return None


_ADDR_CHARS = frozenset("0123456789abcdefABCDEF.:/")


@lru_cache(maxsize=_CACHE_SIZE)
def is_network(text: str) -> bool:
    """True for an IPv4/IPv6 address or CIDR prefix as nft prints it (not a range, not a name)."""
    if not text or not _ADDR_CHARS.issuperset(text):
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def split_nat_target(target: str) -> tuple[str | None, str | None] | None:
    """`1.2.3.4:80` -> (addr, "80"); `[fd00::2]:80`, `fd00::2`, `:3128`; None if malformed."""
    if target.startswith("["):
        close = target.find("]")
        rest = target[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            return None
        return target[1:close], rest[1:] or None
    if target.startswith(":"):
        return None, target[1:]
    if target.count(":") == 1:
        addr, port = target.split(":")
        return addr, port
    return target, None


def set_elements(body: str) -> tuple[str, ...]:
    """The elements of a named set's `elements = { ... }`, without per-element options (`timeout 1h`)."""
    return tuple(_element_value(e) for e in split_elements(body))


def _element_value(element: str) -> str:
    for option in (" timeout ", " expires ", " comment ", " counter "):
        cut = element.find(option)
        if cut >= 0:
            element = element[:cut]
    return element


def _elements(value: Value, sets: Sets) -> tuple[str, ...] | None:
    """The elements a value stands for: itself, an anonymous set's, or a named set's (None if unknown)."""
    if isinstance(value, tuple):
        return value
    if value.startswith("@"):
        return sets.get(value[1:])
    return (value,)


def _single(value: Value, sets: Sets) -> str | None:
    """The one element a value stands for, or None when it is several, none or unknown."""
    if isinstance(value, str) and not value.startswith("@"):
        return value
    elements = _elements(value, sets)
    return elements[0] if elements is not None and len(elements) == 1 else None


# --- conditions: each matcher records one match into the Matches fields, or returns False -------

Fields = dict[str, object]  # Matches keyword arguments collected so far


def _set_family(fields: Fields, family: Family) -> bool:
    """Note that the rule only matches `family`; False if it already only matches the other one."""
    current = fields.get("family")
    if current is None:
        fields["family"] = family
        return True
    return current == family


def _set_protocol(fields: Fields, name: str | None, negated: bool) -> bool:
    if not name or not name.isidentifier():
        return False
    current = fields.get("protocol")
    if current is None:
        fields["protocol"] = name
        if negated:
            fields["protocol_negated"] = True
        return True
    return current == name and fields.get("protocol_negated", False) == negated


def _port_matcher(protocol: str | None) -> Matcher:
    """`tcp dport 80`, `th dport { 53, 5353 }`, `udp dport != @ports`."""

    def match(fields: Fields, value: Value, negated: bool, sets: Sets) -> bool:
        elements = (value,) if value.__class__ is str and value[:1] != "@" else _elements(value, sets)
        if not elements or "dports" in fields:
            return False
        ranges = []
        for element in elements:
            port = parse_port_range(element)
            if port is None:
                return False
            ranges.append(port)
        if protocol is not None and not _set_protocol(fields, protocol, False):
            return False
        fields["dports"] = tuple(ranges)
        if negated:
            fields["dports_negated"] = True
        return True

    return match


def _protocol_matcher(family: Family | None) -> Matcher:
    """`meta l4proto tcp`, `ip protocol udp`, `ip6 nexthdr != tcp`."""

    def match(fields: Fields, value: Value, negated: bool, sets: Sets) -> bool:
        if family is not None and not _set_family(fields, family):
            return False
        return _set_protocol(fields, _single(value, sets), negated)

    return match


@lru_cache(maxsize=_CACHE_SIZE)
def _addr_match(network: str, negated: bool) -> AddrMatch:
    return AddrMatch(network, negated)


def _address_matcher(field: str, family: Family) -> Matcher:
    """`ip daddr 127.0.0.1`, `ip6 saddr != fd00::/64`: one address or prefix, not a set or range."""

    def match(fields: Fields, value: Value, negated: bool, sets: Sets) -> bool:
        if not _set_family(fields, family):
            return False
        network = _single(value, sets)
        if network is None or field in fields or not is_network(network):
            return False
        fields[field] = _addr_match(network, negated)
        return True

    return match


@lru_cache(maxsize=_CACHE_SIZE)
def _iface_match(name: str, negated: bool) -> IfaceMatch:
    return IfaceMatch(name, negated)


def _iface_matcher(field: str) -> Matcher:
    """`iifname "br-x"`, `oifname != "lo"`, `iif "lo"`."""

    def match(fields: Fields, value: Value, negated: bool, sets: Sets) -> bool:
        name = _single(value, sets)
        name = None if name is None else unquote(name)
        if not name or field in fields:
            return False
        fields[field] = _iface_match(name, negated)
        return True

    return match


def _match_fib_local(fields: Fields, value: Value, negated: bool, sets: Sets) -> bool:
    """`fib daddr type local` -> dst_local True; `!= local` -> False; other types stay in `other`."""
    if _single(value, sets) != "local" or "dst_local" in fields:
        return False
    fields["dst_local"] = not negated
    return True


def _match_nfproto(fields: Fields, value: Value, negated: bool, sets: Sets) -> bool:
    """`meta nfproto ipv4|ipv6`."""
    family = _NFPROTO_FAMILIES.get(_single(value, sets) or "")
    return not negated and family is not None and _set_family(fields, family)


Matcher = Callable[[Fields, Value, bool, Sets], bool]
_MATCHERS: dict[str, Matcher] = {
    **{key: _port_matcher(protocol) for key, protocol in _PORT_KEYS.items()},
    **{key: _protocol_matcher(family) for key, family in _PROTO_KEYS.items()},
    **{key: _address_matcher(key.split()[1], family) for key, family in _ADDR_KEYS.items()},
    **{key: _iface_matcher(field) for key, field in _IFACE_KEYS.items()},
    "fib daddr type": _match_fib_local,
    "meta nfproto": _match_nfproto,
}


def add_match(fields: Fields, other: list[str], match: Match, sets: Sets) -> None:
    """Record one match into `fields`; what cannot be modelled goes, as printed, to `other`."""
    op = match.op
    matcher = _MATCHERS.get(match.key)
    if matcher is not None and (op in _EQ_OPS or op == "!=") and matcher(fields, match.value, op == "!=", sets):
        return
    key = match.key
    if matcher is None and key.startswith(("ip ", "ip6 ")):  # `ip dscp cs1`: still only matches that family
        _set_family(fields, "ipv4" if key.startswith("ip ") else "ipv6")
    other.append(match.text)


# --- the verdict side ----------------------------------------------------------------------------


def _verdict(stmt: VerdictStmt) -> tuple[Verdict, str | None]:
    """(verdict, jump target) of a verdict statement."""
    return _MODEL_VERDICTS.get(stmt.name, "other"), stmt.target if stmt.name in ("jump", "goto") else None


def _nat(stmt: NatStmt, other: list[str]) -> tuple[Verdict, NatTarget | None, Family | None]:
    """(verdict, target, family) of a NAT statement.

    A target nft computes per packet (a map) goes to `other` (target None: the packets are caught,
    their destination is not known). A written target that is not an address and port
    (`dnat to 12345:x`, full-width digits) is no nft output: ValueError.
    """
    family = NAT_FAMILIES.get(stmt.family or "")
    if stmt.kind == "masquerade":
        return "masquerade", None, family
    target = _nat_target(stmt)
    if target is None:
        if stmt.target is not None:
            raise ValueError(f"{stmt.kind} target {stmt.target!r} is not an address[:port] nft would print")
        other.append(stmt.text)
        return _MODEL_VERDICTS.get(stmt.kind, "other"), None, family
    if target.address:
        own: Family = "ipv6" if ":" in target.address else "ipv4"
        if family is not None and family != own:
            raise ValueError(f"{stmt.text!r}: an {own} address in a {stmt.family} statement")
        family = own
    return _MODEL_VERDICTS.get(stmt.kind, "other"), target, family


def check_nat_family(table_family: str, nat: NatTarget | None, nat_family: Family | None) -> None:
    """ValueError when a NAT target's family is not its table's (an IPv4 target in an ip6 table)."""
    if nat is None or table_family not in ("ipv4", "ipv6"):
        return
    own = nat_family or (("ipv6" if ":" in nat.address else "ipv4") if nat.address else None)
    if own is not None and own != table_family:
        raise ValueError(f"an {own} NAT target in an {table_family} table")


def _nat_target(stmt: NatStmt) -> NatTarget | None:
    """The NatTarget of a dnat/snat/redirect statement, or None when it cannot be read."""
    if stmt.target is None:
        return None
    return read_nat_target(stmt.kind, stmt.target)


@lru_cache(maxsize=_CACHE_SIZE)
def read_nat_target(kind: str, text: str) -> NatTarget | None:
    if text == "":
        return NatTarget(None, None) if kind == "redirect" else None
    parts = split_nat_target(text)
    if parts is None:
        return None
    address, port = parts
    ports = None if port is None else parse_port_range(port)
    if (port is not None and ports is None) or (address is None) != (kind == "redirect"):
        return None
    if address is not None and not is_address(address):
        return None
    return NatTarget(address, ports)


@lru_cache(maxsize=1 << 16)
def is_address(text: str) -> bool:
    """True for one IPv4/IPv6 address in ASCII, or a range of them (`10.0.0.1-10.0.0.9`), without a
    prefix or zone."""
    if not text or not _ADDR_CHARS.issuperset(text.replace("-", "")) or "/" in text:
        return False
    try:
        versions = {ipaddress.ip_address(part).version for part in text.split("-", 1)}
    except ValueError:
        return False
    return len(versions) == 1


class RuleSite(NamedTuple):
    """Where one rule stands, and its text as shown to users."""

    family: TableFamily
    table: str
    chain: str
    position: int
    text: str
    line: int | None


def build_rules(terms: Sequence[Term], site: RuleSite, sets: Sets) -> list[Rule]:
    """The records for one rule: one, or one per element of a verdict map (none for an empty map)."""
    fields: Fields = {}
    other: list[str] = []
    verdict: Verdict | None = None
    fallback: Verdict = "other"  # the verdict of a rule without one: "mark" after `meta mark set`
    jump = comment = None
    nat: NatTarget | None = None
    nat_family: Family | None = None
    vmap: VmapStmt | None = None
    nat_map: NatStmt | None = None
    for term in terms:
        if isinstance(term, Match):
            add_match(fields, other, term, sets)
        elif isinstance(term, Note):
            if term.kind == "cond":
                other.append(term.text)
            elif term.kind == "mark":
                fallback = "mark"
        elif isinstance(term, NatStmt) and term.target is None and term.kind != "redirect":
            nat_map = term  # a target nft computes per packet: a map's elements, or unknown
        elif isinstance(term, NatStmt):
            verdict, nat, nat_family = _nat(term, other)
        elif isinstance(term, VerdictStmt):
            verdict, jump = _verdict(term)
        elif isinstance(term, Comment):
            comment = term.value
        else:
            vmap = term
    if vmap is not None:
        return _vmap_rules(vmap, fields, other, site, comment, sets)
    if nat_map is not None:
        return _nat_map_rules(nat_map, fields, other, site, comment, sets)
    check_nat_family(site.family, nat, nat_family)
    return [site_rule(site, _freeze(fields, other), verdict or fallback, jump, nat, nat_family, comment)]


_NAT_MAP = re.compile(r"(?P<kind>dnat|snat)(?P<family> ip6?)? to (?P<key>.+?) map (?P<map>@\S+|\{ .+ \})")


def _nat_map_rules(
    stmt: NatStmt, fields: Fields, other: list[str], site: RuleSite, comment: str | None, sets: Sets
) -> list[Rule]:
    """One record per element of a NAT map (`dnat ip to tcp dport map { 80 : 10.0.0.2 . 8080 }`): the
    element's key as a match, its data as the target. A map not declared here, or another computed
    target, is a condition portscope does not model (as an undeclared verdict map): never a made-up
    target such as the local address, which only `redirect` means."""
    found = _NAT_MAP.fullmatch(stmt.text)
    value = None if found is None else found["map"]
    elements = None if value is None else _elements(tuple(value[2:-2].split(", ")) if value[0] == "{" else value, sets)
    if found is None or elements is None:
        return [site_rule(site, _freeze(fields, [*other, stmt.text]), "other", comment=comment)]
    rules = []
    for element in elements:
        key, sep, data = element.partition(" : ")
        address, dot, port = data.partition(" . ")
        target = (f"[{address}]:{port}" if ":" in address else f"{address}:{port}") if dot else address
        element_stmt = NatStmt(
            kind=stmt.kind, family=stmt.family, target=target, text=f"{stmt.kind}{found['family'] or ''} to {target}"
        )
        element_fields, element_other = dict(fields), list(other)
        nat = read_nat_target(stmt.kind, target) if sep else None
        if nat is None:
            element_other.append(f"{stmt.text.partition(' map ')[0]} map {{ {element} }}")
            rules.append(site_rule(site, _freeze(element_fields, element_other), "other", comment=comment))
            continue
        narrowed = _narrow_ports(element_fields, found["key"], key)
        if narrowed is False:
            continue  # a port the rule's own port match leaves out: this element never applies
        if narrowed is None:
            match = Match(key=found["key"], op="", value=key, text=f"{found['key']} {key}")
            add_match(element_fields, element_other, match, sets)
        verdict, nat, nat_family = _nat(element_stmt, element_other)
        check_nat_family(site.family, nat, nat_family)
        rules.append(site_rule(site, _freeze(element_fields, element_other), verdict, None, nat, nat_family, comment))
    return rules


def _narrow_ports(fields: Fields, key_expr: str, key: str) -> bool | None:
    """A `tcp dport map` element's port within the rule's own `tcp dport { ... }`: True (the match is
    now that port), False (the port is not among them), None (not that case: match the key as usual)."""
    port, own = parse_port_range(key), fields.get("dports")
    if (
        port is None
        or not own
        or fields.get("dports_negated")
        or key_expr not in ("th dport", f"{fields.get('protocol')} dport")
    ):
        return None
    if not any(r.first <= port.first and port.last <= r.last for r in own):  # type: ignore[attr-defined]
        return False
    fields["dports"] = (port,)
    return True


def _freeze(fields: Fields, other: list[str]) -> Matches:
    if other:
        return Matches(**fields, other=tuple(other))  # type: ignore[arg-type]  # keys: Matches fields
    return Matches(**fields) if fields else UNCONDITIONAL  # type: ignore[arg-type]  # keys: Matches fields


def site_rule(
    site: RuleSite,
    matches: Matches,
    verdict: Verdict,
    jump: str | None = None,
    nat: NatTarget | None = None,
    nat_family: Family | None = None,
    comment: str | None = None,
) -> Rule:
    """The nftables record of a rule standing at `site`."""
    return Rule(
        backend="nftables",
        family=site.family,
        table=site.table,
        chain=site.chain,
        position=site.position,
        text=site.text,
        matches=matches,
        verdict=verdict,
        jump=jump,
        nat=nat,
        nat_family=nat_family,
        comment=comment,
        line=site.line,
    )


def _vmap_rules(
    vmap: VmapStmt, fields: Fields, other: list[str], site: RuleSite, comment: str | None, sets: Sets
) -> list[Rule]:
    """One record per element of a verdict map: the element's key as a match, its verdict."""
    elements = _elements(vmap.value, sets)
    if elements is None:  # a map that is not declared here
        return [site_rule(site, _freeze(fields, [*other, vmap.text]), "other", comment=comment)]
    rules = []
    verdict: Verdict
    for element in elements:
        key, sep, data = element.partition(" : ")
        stmt = verdict_from_text(data) if sep else None
        element_fields, element_other = dict(fields), list(other)
        if stmt is None:
            element_other.append(f"{vmap.key} vmap {{ {element} }}")
            verdict, jump = "other", None
        else:
            add_match(
                element_fields,
                element_other,
                Match(key=vmap.key, op="", value=key, text=f"{vmap.key} {key}"),
                sets,
            )
            verdict, jump = _verdict(stmt)
        rules.append(site_rule(site, _freeze(element_fields, element_other), verdict, jump, comment=comment))
    return rules


def unparsed_rule(site: RuleSite, error: BaseException) -> Rule:
    """A rule portscope could not read, kept as evidence: it matches conditionally and does nothing known."""
    return site_rule(site, Matches(other=(f"unparsed: {str(error) or type(error).__name__}",)), "other")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while building many acyclic objects (decoded JSON, a chain's rules).

    Left running, it walks the objects built so far again and again: `json.loads` of 10,000 rules takes
    twice as long. What is still alive when it resumes is walked once, so let temporaries go inside the
    block. The previous state is restored, so nesting and a caller's own `gc.disable()` hold.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
