"""The nft text parser's fast path for the common engine shape gives exactly what the general path gives; and the
port match read from a rule's text alone (`text_dports`, what `Chain.select` screens a read for one port with) is
what parsing the rule gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.core.model import PortRange, Rule
from portscope.core.rules.nft_statements import RuleSite, build_rules
from portscope.core.rules.nft_text import line_dports, rule_text, terms_from_tokens, tokenize
from portscope.core.rules.nft_text_fast import TEXT_FAST, text_dports, text_fast_rule
from tests.unit.nft_support import FIXTURE_NAMES, FIXTURES

IFACE = st.sampled_from(
    ["", 'iifname "docker0" ', 'iifname != "docker0" ', 'oifname "br-1a2b" ', 'iifname "veth*" ', 'iifname "a b" ',
     'iifname "" ', 'iifname != "@ports" ', 'iifname "eth0.5" ', 'oifname != "x:y" ', 'iifname docker0 ']
)  # fmt: skip
ADDRESS = st.sampled_from(
    ["", "ip daddr 172.17.0.2 ", "ip saddr 10.0.0.0/8 ", "ip daddr != 127.0.0.0/8 ", "ip6 daddr fd00::2 ",
     "ip6 saddr ::1 ", "ip daddr 300.1.1.1 ", "ip daddr 10.0.0.1/33 ", "ip daddr fd00::1 ", "ip6 daddr 10.0.0.1 ",
     "ip daddr 010.0.0.1 ", "ip saddr 1.2.3.4/24 "]
)  # fmt: skip
PORT = st.sampled_from(
    ["", "tcp dport 80 ", "udp dport 5353 ", "sctp dport 9 ", "tcp dport != 22 ", "tcp dport 8000-8010 ",
     "tcp dport 0 ", "tcp dport 65536 ", "tcp dport 99999 ", "tcp dport 10-5 ", "tcp dport 080 ", "dccp dport 5 "]
)  # fmt: skip
COUNTER = st.sampled_from(["", "counter ", "counter packets 12 bytes 3456 "])
VERDICT = st.sampled_from(
    ["dnat to 172.17.0.2:80", "dnat to 172.17.0.2", "dnat ip to 10.0.0.1:8000-8010", "dnat ip6 to [fd00::2]:80",
     "dnat to [fd00::2]:80", "dnat ip to [fd00::2]:80", "dnat ip6 to 10.0.0.1", "dnat to 1.2.3.4:0",
     "dnat to 1.2.3.4:x", "jump DOCKER", "goto nat-x", "jump a:b", "accept", "drop", "return", "masquerade",
     "reject", "dnat to :80", "jump"]
)  # fmt: skip
COMMENT = st.sampled_from(["", ' comment "DNAT"', ' comment "a b"', ' comment ""', ' comment "x\\"y"', " comment x"])
FAMILY = st.sampled_from(["ipv4", "ipv6", "inet"])


def general(site: RuleSite) -> list[Rule] | str:
    try:
        return build_rules(terms_from_tokens(tokenize(site.text)), site, {})
    except ValueError as exc:
        return f"ValueError: {exc}"


def fast(site: RuleSite) -> list[Rule] | str | None:
    try:
        found = text_fast_rule(site)
    except ValueError as exc:
        return f"ValueError: {exc}"
    return None if found is None else [found]


#: The matches in nft's order (each may be blank), or in any order.
MATCHES = st.one_of(st.tuples(IFACE, ADDRESS, ADDRESS, PORT, COUNTER).map(list),
                    st.lists(st.one_of(IFACE, ADDRESS, PORT, COUNTER), max_size=5))  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(FAMILY, MATCHES, VERDICT, COMMENT)
def test_the_fast_path_records_what_the_general_path_records(
    family: str, before: list[str], verdict: str, comment: str
) -> None:
    site = RuleSite(family, "t", "c", 3, rule_text(f"{''.join(before)}{verdict}{comment}"), 7)  # type: ignore[arg-type]
    found = fast(site)
    if found is not None:
        assert found == general(site), site.text


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_rule_the_fast_path_takes_is_the_general_record(name: str) -> None:
    taken = 0
    for line in (FIXTURES / f"{name}.nft").read_text().splitlines():
        text = rule_text(line.strip())
        if TEXT_FAST.fullmatch(text) is None:
            continue
        site = RuleSite("ipv4", "t", "c", 1, text, 1)
        found = fast(site)
        if found is not None:
            taken += 1
            assert found == general(site), text
    assert taken or name not in ("docker29",)


def test_docker_lines_take_the_fast_path() -> None:
    for line in (
        'iifname != "docker0" tcp dport 8080 counter packets 0 bytes 0 dnat to 172.17.0.2:80 comment "DNAT"',
        'ip saddr 172.17.0.2 ip daddr 172.17.0.2 tcp dport 80 counter packets 0 bytes 0 masquerade comment "HAIRPIN"',
        "ip daddr 172.17.0.2 tcp dport 80 counter packets 0 bytes 0 accept",
        'oifname "docker0" jump filter-forward-in__docker0',
        'counter packets 0 bytes 0 drop comment "UNPUBLISHED PORT DROP"',
    ):
        site = RuleSite("ipv4", "docker-bridges", "c", 1, rule_text(line), 1)
        assert text_fast_rule(site) is not None, line
        assert fast(site) == general(site)


def said_and_parsed(site: RuleSite) -> tuple[object, object] | None:
    """(the ports `text_dports` reads, the parsed rules' port matches) where the text says one; None elsewhere."""
    own = text_dports(site.text)
    if own is None:
        return None
    found = general(site)
    parsed = found if isinstance(found, str) else [(r.matches.dports, r.matches.dports_negated) for r in found]
    return own, parsed


@settings(max_examples=2000, deadline=None)
@given(FAMILY, MATCHES, VERDICT, COMMENT)
def test_a_port_match_read_from_the_text_is_the_parsed_one(
    family: str, before: list[str], verdict: str, comment: str
) -> None:
    """Where the text says a port match, parsing gives that match (or refuses the rule: a DNAT of the other
    family, which the kernel would match on that port alone)."""
    site = RuleSite(family, "t", "c", 3, rule_text(f"{''.join(before)}{verdict}{comment}"), 7)  # type: ignore[arg-type]
    found = said_and_parsed(site)
    if found is not None:
        own, parsed = found
        assert parsed == [(own, False)] or (isinstance(parsed, str) and "dnat" in site.text), site.text


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_port_match_read_from_the_text_on_every_fixture_rule(name: str) -> None:
    said = 0
    for line in (FIXTURES / f"{name}.nft").read_text().splitlines():
        site = RuleSite("inet", "t", "c", 1, rule_text(line.strip()), 1)  # both families' NAT targets
        found = said_and_parsed(site)
        if found is not None:
            said += 1
            assert found[1] == [(found[0], False)], site.text
    assert said or name not in ("docker29",)


def test_what_the_text_says_of_docker_lines_and_others() -> None:
    dnat = 'iifname != "docker0" tcp dport 8080 counter packets 3 bytes 180 dnat to 172.17.0.2:80 comment "DNAT"'
    assert line_dports((1, dnat, 5)) == (PortRange(8080, 8080),)
    assert text_dports("ip daddr 172.17.0.2 tcp dport 8000-8010 counter accept") == (PortRange(8000, 8010),)
    for unsaid in (
        "tcp dport != 80 accept",  # negated: parsing must say
        "counter accept",  # no port match: every port
        "tcp dport { 80, 443 } accept",  # a set
        "meta l4proto tcp th dport 80 accept",  # another shape
        "tcp dport 99999 accept",  # not a port
    ):
        assert text_dports(unsaid) is None, unsaid
