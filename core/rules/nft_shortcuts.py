"""The common engine shape, read without terms: the records of nft JSON's fast path (`nft_json_fast`).

`iifname != "br-x" ip daddr 127.0.0.1 tcp dport 8080 counter dnat to 192.0.2.2:80 comment "DNAT"`:
`nft_json_fast` recognises it and records each match with these helpers, which give exactly what
`nft_statements.add_match` and its NAT reading give (tests compare the two) or False/None when the
general path must decide.
"""

from __future__ import annotations

from functools import lru_cache
from typing import cast

from portscope.core.model import (
    UNCONDITIONAL,
    AddrMatch,
    Family,
    IfaceMatch,
    Matches,
    NatTarget,
    PortRange,
    Rule,
    Verdict,
)
from portscope.core.rules.nft_statements import (
    NAT_FAMILIES,
    Fields,
    RuleSite,
    check_nat_family,
    is_network,
    parse_port_range,
    read_nat_target,
    site_rule,
)

_LRU_SIZE = 1 << 16  # distinct values per memo: one per published port and container, across re-reads
_FAST_IFACE_FIELDS = {"iifname": "in_iface", "oifname": "out_iface"}


@lru_cache(maxsize=_LRU_SIZE)
def iface_match(name: str, negated: bool) -> IfaceMatch:
    return IfaceMatch(name, negated)


@lru_cache(maxsize=_LRU_SIZE)
def address_match(network: str, negated: bool) -> AddrMatch | None:
    """The match of one address or prefix; None when `network` is not one."""
    return AddrMatch(network, negated) if is_network(network) else None


@lru_cache(maxsize=_LRU_SIZE)
def port_ranges(text: str) -> tuple[PortRange, ...] | None:
    """`(PortRange,)` for `80` or `8000-8010`; None for anything else."""
    port = parse_port_range(text)
    return None if port is None else (port,)


@lru_cache(maxsize=_LRU_SIZE)
def dnat_target(text: str) -> NatTarget | None:
    return read_nat_target("dnat", text)


def fast_iface(fields: Fields, key: str, negated: bool, name: str) -> bool:
    """`iifname|oifname [!=] "NAME"` (NAME unquoted)."""
    field = _FAST_IFACE_FIELDS[key]
    if not name or field in fields:
        return False
    fields[field] = iface_match(name, negated)
    return True


def fast_address(fields: Fields, protocol: str, field: str, negated: bool, network: str) -> bool:
    """`ip|ip6 daddr|saddr [!=] NETWORK`."""
    family = NAT_FAMILIES[protocol]
    current = fields.get("family")
    if (current is not None and current != family) or field in fields:
        return False
    match = address_match(network, negated)
    if match is None:
        return False
    fields["family"] = family
    fields[field] = match
    return True


def fast_dport(fields: Fields, protocol: str, negated: bool, port: str) -> bool:
    """`tcp|udp|sctp dport [!=] PORT[-PORT]`."""
    if "dports" in fields or "protocol" in fields:
        return False
    ranges = port_ranges(port)
    if ranges is None:
        return False
    fields["protocol"] = protocol
    fields["dports"] = ranges
    if negated:
        fields["dports_negated"] = True
    return True


def fast_dnat(keyword: str | None, target: str) -> tuple[NatTarget, Family | None] | None:
    """`dnat [ip|ip6] to TARGET`: (target, family), or None when TARGET is not one portscope reads."""
    nat = dnat_target(target)
    if nat is None:
        return None
    family = NAT_FAMILIES.get(keyword or "")
    if nat.address:
        own: Family = "ipv6" if ":" in nat.address else "ipv4"
        if family is not None and family != own:
            return None  # the general path says what is wrong
        family = own
    return nat, family


def fast_record(
    site: RuleSite,
    text: str,
    fields: Fields,
    verdict: Verdict,
    jump: str | None,
    nat: NatTarget | None,
    nat_family: Family | None,
    comment: str | None,
) -> Rule:
    """The record `build_rules` makes of a rule of the common shape, from its collected `fields`.

    `text` replaces `site.text` (a reader that renders the text as it reads the rule passes a site without one).
    """
    check_nat_family(site.family, nat, nat_family)
    matches = Matches(**fields) if fields else UNCONDITIONAL  # type: ignore[arg-type]  # keys: Matches fields
    return site_rule(site._replace(text=text), matches, verdict, jump, nat, nat_family, comment)


def fast_verdict(
    nat_keyword: str | None, target: str | None, jump_kind: str | None, word: str | None
) -> tuple[Verdict, NatTarget | None, Family | None] | None:
    """(verdict, NAT target, its family) of the common shape's last statement: `dnat [ip|ip6] to TARGET` (when
    `target` is given), `jump|goto CHAIN`, or a verdict word; None when the general path must decide."""
    if target is not None:
        found = fast_dnat(nat_keyword, target)
        return None if found is None else ("dnat", *found)
    return cast(Verdict, jump_kind or word), None, None  # the expressions admit only these words
