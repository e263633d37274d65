"""The nft text parser, on rulesets the real nft printed (tests/fixtures/nft, made by make_nft_fixtures.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portscope.core.errors import ParseError
from portscope.core.model import UNCONDITIONAL, AddrMatch, IfaceMatch, Matches, NatTarget, PortRange, Table
from portscope.core.rules.nft_text import parse_nft_text, rule_text
from tests.unit.nft_support import (
    FIXTURE_NAMES,
    FIXTURES,
    NATLAYOUTS,
    load,
    only_rule,
    parse_one,
    parse_rules,
    ports,
    rules_of,
    table,
    wrap,
)

# --- Docker 29 (table ip/ip6 docker-bridges) -------------------------------------------------


def test_docker_tables_and_base_chains() -> None:
    tables = load("docker29")
    assert [(t.backend, t.family, t.name) for t in tables] == [
        ("nftables", "ipv4", "docker-bridges"),
        ("nftables", "ipv6", "docker-bridges"),
    ]
    v4 = tables[0]
    pre = v4.chains["nat-PREROUTING"]
    assert (pre.hook, pre.kind, pre.priority, pre.policy) == ("prerouting", "nat", "dstnat", "accept")
    out = v4.chains["nat-OUTPUT"]
    assert (out.hook, out.kind, out.priority) == ("output", "nat", "-100")  # nft 1.0.6 names dstnat on prerouting only
    assert v4.chains["raw-PREROUTING"].priority == "raw"
    regular = v4.chains["nat-prerouting-and-output"]
    assert (regular.hook, regular.kind, regular.policy, regular.priority) == (None, None, None, None)
    assert v4.chains["nat-postrouting-in__docker0"].rules == []


def test_docker_dnat_rules() -> None:
    v4 = table(load("docker29"), "ipv4", "docker-bridges")
    rules = rules_of(v4, "nat-prerouting-and-output")
    assert [r.position for r in rules] == [1, 2, 3]
    public, loopback, udp = rules
    assert public.text == 'iifname != "bridge1" tcp dport 8080 counter dnat to 192.0.2.2:80 comment "DNAT"'
    assert public.matches == Matches(protocol="tcp", dports=ports(8080), in_iface=IfaceMatch("bridge1", negated=True))
    assert (public.verdict, public.nat, public.nat_family, public.comment) == (
        "dnat",
        NatTarget("192.0.2.2", PortRange(80, 80)),
        "ipv4",
        "DNAT",
    )
    assert (public.backend, public.family, public.table, public.chain) == (
        "nftables",
        "ipv4",
        "docker-bridges",
        "nat-prerouting-and-output",
    )
    assert loopback.matches.daddr == AddrMatch("127.0.0.1")
    assert loopback.matches.family == "ipv4"
    assert loopback.matches.dports == ports(8081)
    assert (udp.matches.protocol, udp.matches.dports, udp.nat) == (
        "udp",
        ports(5353),
        NatTarget("192.0.2.2", ports(53)[0]),
    )


def test_docker_entry_jumps() -> None:
    v4 = table(load("docker29"), "ipv4", "docker-bridges")
    (pre,) = rules_of(v4, "nat-PREROUTING")
    assert pre.matches == Matches(dst_local=True)
    assert (pre.verdict, pre.jump) == ("jump", "nat-prerouting-and-output")
    (out,) = rules_of(v4, "nat-OUTPUT")
    assert out.matches == Matches(daddr=AddrMatch("127.0.0.0/8", negated=True), dst_local=True, family="ipv4")
    v6 = table(load("docker29"), "ipv6", "docker-bridges")
    (out6,) = rules_of(v6, "nat-OUTPUT")
    assert out6.matches == Matches(daddr=AddrMatch("::1", negated=True), dst_local=True, family="ipv6")


def test_docker_ipv6_dnat() -> None:
    v6 = table(load("docker29"), "ipv6", "docker-bridges")
    (dnat,) = rules_of(v6, "nat-prerouting-and-output")
    assert dnat.nat == NatTarget("fd00::2", PortRange(80, 80))
    assert dnat.nat_family == "ipv6"
    assert dnat.matches.dports == ports(8080)


def test_named_verdict_map_gives_one_rule_per_element() -> None:
    v4 = table(load("docker29"), "ipv4", "docker-bridges")
    rules = rules_of(v4, "filter-FORWARD")
    assert [(r.position, r.matches.out_iface or r.matches.in_iface, r.jump) for r in rules] == [
        (1, IfaceMatch("docker0"), "filter-forward-in__docker0"),
        (1, IfaceMatch("bridge1"), "filter-forward-in__bridge1"),
        (2, IfaceMatch("docker0"), "filter-forward-out__docker0"),
        (2, IfaceMatch("bridge1"), "filter-forward-out__bridge1"),
    ]
    assert {r.text for r in rules[:2]} == {"oifname vmap @filter-forward-in-jumps"}
    assert all(r.verdict == "jump" and r.matches.in_iface is None for r in rules[:2])
    assert rules[0].line == rules[1].line


def test_empty_verdict_map_gives_no_rule() -> None:
    v6 = table(load("docker29"), "ipv6", "docker-bridges")
    assert rules_of(v6, "nat-POSTROUTING") == []


def test_counters_are_not_conditions_and_text_drops_their_values() -> None:
    raw = (FIXTURES / "docker29.nft").read_text()
    assert "counter packets 0 bytes 0" in raw
    for tab in load("docker29"):
        for chain in tab.chains.values():
            for rule in chain.rules:
                assert "packets" not in rule.text
                assert not any("counter" in o for o in rule.matches.other)


def test_rule_line_numbers_point_at_the_rule() -> None:
    for name in FIXTURE_NAMES:
        lines = (FIXTURES / f"{name}.nft").read_text().split("\n")
        rules = [r for t in load(name) for c in t.chains.values() for r in c.rules]
        assert rules, name
        for rule in rules:
            assert rule_text(lines[rule.line - 1].strip()) == rule.text


# --- Podman netavark (table inet netavark) ---------------------------------------------------


def test_netavark_dual_stack_dnat() -> None:
    tab = table(load("netavark"), "inet", "netavark")
    v4 = rules_of(tab, "nv_2f259bab_172_18_0_0_nm24_dnat")
    assert [r.verdict for r in v4] == ["jump", "jump", "dnat", "dnat"]
    assert (v4[2].nat, v4[2].nat_family) == (NatTarget("172.18.0.2", PortRange(80, 80)), "ipv4")
    assert v4[3].matches.dports == ports((9000, 9002))
    assert v4[3].nat == NatTarget("172.18.0.2", PortRange(9000, 9002))
    assert v4[1].matches.saddr == AddrMatch("127.0.0.1")
    v6 = only_rule(tab, "nv_2f259bab_fd5e-822b-4924-c112--_nm64_dnat", "dnat")
    assert (v6.nat, v6.nat_family) == (NatTarget("fd5e:822b:4924:c112::2", PortRange(80, 80)), "ipv6")
    assert v6.matches.family is None  # `dnat ip6 to` restricts the NAT, not the match
    assert tab.chains["OUTPUT"].priority == "-100"


def test_netavark_marks_sets_and_unmodelled_conditions() -> None:
    tab = table(load("netavark"), "inet", "netavark")
    (setmark,) = rules_of(tab, "NETAVARK-HOSTPORT-SETMARK")
    assert (setmark.verdict, setmark.matches) == ("mark", UNCONDITIONAL)
    assert setmark.text == "meta mark set meta mark | 0x00002000"
    masq = rules_of(tab, "POSTROUTING")[0]
    assert masq.verdict == "masquerade"
    assert masq.matches.other == ("meta mark & 0x00002000 == 0x00002000",)
    dns = rules_of(tab, "INPUT")[0]
    assert dns.matches.protocol is None
    assert dns.matches.dports == ports(53)
    assert dns.matches.other == ("meta l4proto { tcp, udp }",)
    assert dns.matches.saddr == AddrMatch("172.18.0.0/24")
    invalid = rules_of(tab, "FORWARD")[0]
    assert (invalid.verdict, invalid.matches.other) == ("drop", ("ct state invalid",))
    assert tab.chains["NETAVARK-ISOLATION-1"].rules == []


# --- the hand-made rulesets ------------------------------------------------------------------


def test_handmade_port_ranges_sets_and_comments() -> None:
    tab = table(load("handmade"), "ipv4", "portmap")
    rng = only_rule(tab, "published", "8000-8010")
    assert rng.matches.dports == ports((8000, 8010))
    assert rng.nat == NatTarget("10.0.0.5", PortRange(8000, 8010))
    assert rng.comment == "range 8000-8010"
    anon = only_rule(tab, "published", "{ 80, 443 }")
    assert anon.matches.dports == ports(80, 443)
    assert anon.nat == NatTarget("10.0.0.6", None)
    assert anon.comment == "web: Bob's 'front' box"
    named = only_rule(tab, "published", "@web_ports")
    assert named.matches.dports == ports(80, 443, 8443)
    assert named.matches.other == ("ip saddr @admin_nets",)  # two networks: not one AddrMatch
    empty = only_rule(tab, "published", "@spare")
    assert (empty.matches.dports, empty.matches.other) == ((), ("tcp dport @spare",))


def test_handmade_protocols_and_unmodelled_conditions() -> None:
    tab = table(load("handmade"), "ipv4", "portmap")
    dns = only_rule(tab, "published", "th dport 53")
    assert (dns.matches.protocol, dns.matches.dports) == (None, ports(53))
    assert dns.matches.other == ("meta l4proto { tcp, udp }",)
    assert only_rule(tab, "published", "udp dport 5353").nat == NatTarget("10.0.0.6", PortRange(53, 53))
    assert only_rule(tab, "published", "sctp dport 9").matches.protocol == "sctp"
    limited = only_rule(tab, "published", "limit rate")
    assert limited.matches.dports_negated and limited.matches.dports == ports(22)
    assert limited.matches.other == ("ct state new", "limit rate 10/second")
    assert only_rule(tab, "published", "meta mark").matches.other == ("meta mark 0x00000005",)
    logged = only_rule(tab, "published", "log prefix")
    assert logged.matches == Matches(protocol="tcp", dports=ports(7000))  # logging is not a condition
    assert only_rule(tab, "published", "daddr 203.0.113.7").matches.daddr == AddrMatch("203.0.113.7")


def test_handmade_verdicts() -> None:
    tab = table(load("handmade"), "ipv4", "portmap")
    redirect = only_rule(tab, "prerouting", "redirect")
    assert (redirect.verdict, redirect.nat, redirect.nat_family) == (
        "redirect",
        NatTarget(None, PortRange(3128, 3128)),
        None,
    )
    assert redirect.matches.in_iface == IfaceMatch("eth9")
    goto = only_rule(tab, "published", "goto")
    assert (goto.verdict, goto.jump) == ("goto", "empty")
    ret = only_rule(tab, "published", "return")
    assert (ret.verdict, ret.matches) == ("return", Matches(dst_local=False))
    snat = only_rule(tab, "postrouting", "snat")
    assert (snat.verdict, snat.nat) == ("snat", NatTarget("198.51.100.1", None))
    masq = only_rule(tab, "postrouting", "masquerade")
    assert (masq.verdict, masq.nat, masq.matches.out_iface) == ("masquerade", None, IfaceMatch("lo", negated=True))
    assert tab.chains["postrouting"].priority == "srcnat + 5"
    assert tab.chains["empty"].rules == []


def test_handmade_inet_table() -> None:
    tab = table(load("handmade"), "inet", "edge")
    assert tab.chains["pre"].priority == "dstnat - 10"
    nfproto = only_rule(tab, "pre", "meta nfproto")
    assert (nfproto.matches.family, nfproto.nat_family) == ("ipv4", "ipv4")
    nexthdr = only_rule(tab, "pre", "nexthdr")
    assert (nexthdr.matches.protocol, nexthdr.matches.family) == ("tcp", "ipv6")
    assert (nexthdr.nat, nexthdr.nat_family) == (NatTarget("fd00:1::2", None), "ipv6")
    ranged = only_rule(tab, "pre", "[fd00:1::2]:22-23")
    assert ranged.nat == NatTarget("fd00:1::2", PortRange(22, 23))
    two_ifaces = only_rule(tab, "pre", '{ "eth1", "eth2" }')
    assert two_ifaces.matches.in_iface is None
    assert two_ifaces.matches.other == ('iifname { "eth1", "eth2" }',)
    assert only_rule(tab, "pre", 'iif "lo"').matches.in_iface == IfaceMatch("lo")
    mapped = [r for r in rules_of(tab, "pre") if "dport map" in r.text]  # a literal map: one record per element
    assert [(r.verdict, r.nat, r.matches.dports, r.matches.other) for r in mapped] == [
        ("dnat", NatTarget("10.1.0.5", PortRange(3000, 3000)), (PortRange(3000, 3000),), ()),
        ("dnat", NatTarget("10.1.0.6", PortRange(3000, 3000)), (PortRange(3001, 3001),), ()),
    ]
    flags = only_rule(tab, "pre", "tcp flags")
    assert flags.matches.other == ("tcp flags syn / syn,ack",)


def test_inline_verdict_map() -> None:
    tab = table(load("handmade"), "inet", "edge")
    inline = [r for r in rules_of(tab, "pre") if "vmap {" in r.text]
    assert [(r.matches.out_iface, r.verdict, r.jump) for r in inline] == [
        (IfaceMatch("lo"), "accept", None),
        (IfaceMatch("eth9"), "jump", "edge-out"),
    ]
    assert not any("@ssh_routes" in r.text for r in rules_of(tab, "pre"))  # declared empty


def test_rule_without_verdict_and_reject() -> None:
    tab = table(load("handmade"), "inet", "edge")
    (counter,) = rules_of(tab, "edge-out")
    assert (counter.verdict, counter.matches, counter.text) == ("other", UNCONDITIONAL, "counter")
    reject = only_rule(tab, "filter", "reject")
    assert (reject.verdict, reject.matches.dports) == ("reject", ports(8080))
    assert tab.chains["filter"].policy == "drop"


def test_other_families_are_skipped() -> None:
    tables = load("handmade")
    assert [(t.family, t.name) for t in tables] == [("ipv4", "portmap"), ("inet", "edge")]


# --- single statements -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("tcp dport 8080 accept", Matches(protocol="tcp", dports=ports(8080))),
        ("udp dport 53 accept", Matches(protocol="udp", dports=ports(53))),
        ("th dport 53 accept", Matches(dports=ports(53))),
        ("tcp dport { 80, 443, 8000-8010 } accept", Matches(protocol="tcp", dports=ports(80, 443, (8000, 8010)))),
        ("tcp dport != 80 accept", Matches(protocol="tcp", dports=ports(80), dports_negated=True)),
        ("meta l4proto tcp accept", Matches(protocol="tcp")),
        ("ip protocol tcp accept", Matches(protocol="tcp", family="ipv4")),
        ("ip protocol != udp accept", Matches(protocol="udp", protocol_negated=True, family="ipv4")),
        ("ip6 nexthdr tcp accept", Matches(protocol="tcp", family="ipv6")),
        ("meta l4proto { tcp, udp } accept", Matches(other=("meta l4proto { tcp, udp }",))),
        ("ip daddr 1.2.3.4 accept", Matches(daddr=AddrMatch("1.2.3.4"), family="ipv4")),
        ("ip daddr != 127.0.0.0/8 accept", Matches(daddr=AddrMatch("127.0.0.0/8", True), family="ipv4")),
        ("ip6 daddr ::1 accept", Matches(daddr=AddrMatch("::1"), family="ipv6")),
        ("ip saddr 10.0.0.0/8 accept", Matches(saddr=AddrMatch("10.0.0.0/8"), family="ipv4")),
        ("ip daddr 10.0.0.1-10.0.0.5 accept", Matches(family="ipv4", other=("ip daddr 10.0.0.1-10.0.0.5",))),
        ("meta nfproto ipv6 accept", Matches(family="ipv6")),
        ('iifname "br-x" accept', Matches(in_iface=IfaceMatch("br-x"))),
        ('iifname != "lo" accept', Matches(in_iface=IfaceMatch("lo", True))),
        ('oifname "br-*" accept', Matches(out_iface=IfaceMatch("br-*"))),
        ('oif "lo" accept', Matches(out_iface=IfaceMatch("lo"))),
        ("fib daddr type local accept", Matches(dst_local=True)),
        ("fib daddr type != local accept", Matches(dst_local=False)),
        ("fib daddr type broadcast accept", Matches(other=("fib daddr type broadcast",))),
        ("fib daddr . iif type local accept", Matches(other=("fib daddr . iif type local",))),
        ("ct state established,related accept", Matches(other=("ct state established,related",))),
        ("ip dscp cs1 accept", Matches(family="ipv4", other=("ip dscp cs1",))),
        ("udp sport 53 accept", Matches(other=("udp sport 53",))),
        ("tcp dport < 1024 accept", Matches(other=("tcp dport < 1024",))),
        ("tcp dport 80 udp dport 53 accept", Matches(protocol="tcp", dports=ports(80), other=("udp dport 53",))),
        ("meta nfproto ipv4 ip6 daddr ::1 accept", Matches(family="ipv4", other=("ip6 daddr ::1",))),
        ("limit rate 10/second accept", Matches(other=("limit rate 10/second",))),
        ("counter packets 5 bytes 300 accept", UNCONDITIONAL),
        ('log prefix "a b" level info accept', UNCONDITIONAL),
        ("socket transparent 1 accept", Matches(other=("socket transparent 1",))),
    ],
)
def test_match_translation(rule: str, expected: Matches) -> None:
    parsed = parse_one(rule)
    assert parsed.matches == expected
    assert parsed.verdict == "accept"


@pytest.mark.parametrize(
    ("rule", "verdict", "jump", "nat", "nat_family"),
    [
        ("dnat to 1.2.3.4:80", "dnat", None, NatTarget("1.2.3.4", PortRange(80, 80)), "ipv4"),
        ("dnat ip to 1.2.3.4:80", "dnat", None, NatTarget("1.2.3.4", PortRange(80, 80)), "ipv4"),
        ("dnat ip6 to [fd00::2]:80", "dnat", None, NatTarget("fd00::2", PortRange(80, 80)), "ipv6"),
        ("dnat to [fd00::2]:80", "dnat", None, NatTarget("fd00::2", PortRange(80, 80)), "ipv6"),
        ("dnat ip6 to fd00::2", "dnat", None, NatTarget("fd00::2", None), "ipv6"),
        ("dnat to 1.2.3.4:8000-8010", "dnat", None, NatTarget("1.2.3.4", PortRange(8000, 8010)), "ipv4"),
        ("dnat to 1.2.3.4", "dnat", None, NatTarget("1.2.3.4", None), "ipv4"),
        ("dnat to 1.2.3.4:80 persistent", "dnat", None, NatTarget("1.2.3.4", PortRange(80, 80)), "ipv4"),
        ("redirect to :8080", "redirect", None, NatTarget(None, PortRange(8080, 8080)), None),
        ("redirect", "redirect", None, NatTarget(None, None), None),
        ("snat to 5.6.7.8", "snat", None, NatTarget("5.6.7.8", None), "ipv4"),
        ("masquerade", "masquerade", None, None, None),
        ("masquerade to :1024-2000 random", "masquerade", None, None, None),
        ("jump other-chain", "jump", "other-chain", None, None),
        ("goto other-chain", "goto", "other-chain", None, None),
        ("return", "return", None, None, None),
        ("accept", "accept", None, None, None),
        ("drop", "drop", None, None, None),
        ("reject with icmp host-unreachable", "reject", None, None, None),
        ("continue", "other", None, None, None),
        ("meta mark set 0x00000001", "mark", None, None, None),
        ("meta mark set 0x00000001 accept", "accept", None, None, None),
        ("ct mark set 0x00000001", "other", None, None, None),
        ("notrack", "other", None, None, None),
    ],
)
def test_verdict_translation(
    rule: str, verdict: str, jump: str | None, nat: NatTarget | None, nat_family: str | None
) -> None:
    parsed = parse_one(f"tcp dport 1 {rule}")
    assert (parsed.verdict, parsed.jump, parsed.nat, parsed.nat_family) == (verdict, jump, nat, nat_family)
    assert parsed.matches == Matches(protocol="tcp", dports=ports(1))


@pytest.mark.parametrize(
    "target",
    ["1.2.3.4:99999", "12345:x", "12345", "\uff11\uff17\uff12.17.0.2:80", "1.2.3.4:\uff18\uff10", "1.2.3.4/24"],
)
def test_malformed_nat_target_is_refused_never_a_binding(target: str) -> None:
    """No nft prints such a target: a dump names the line (exit 3); nft's own output keeps it unparsed."""
    with pytest.raises(ParseError, match=r"^nft:3: dnat target .* is not an address"):
        parse_one(f"tcp dport 1 dnat to {target}")
    (rule,) = parse_nft_text(wrap(f"tcp dport 1 dnat to {target}"), lazy=True)[0].chains["c"].rules
    assert (rule.verdict, rule.nat) == ("other", None)


@pytest.mark.parametrize(
    ("table", "rule"),
    [("ip6", "dnat to 172.17.0.2:80"), ("ip", "dnat to [fd00::2]:80"), ("inet", "dnat ip6 to 172.17.0.2:80")],
)
def test_nat_target_of_the_other_family_is_refused(table: str, rule: str) -> None:
    text = f"table {table} t {{\n\tchain c {{\n\t\ttcp dport 1 {rule}\n\t}}\n}}\n"
    with pytest.raises(ParseError, match=r"^nft:3: .*ipv[46]"):
        parse_nft_text(text)


def test_comment_with_spaces_hash_and_quote() -> None:
    rule = parse_one('tcp dport 1 accept comment "it\'s # not a comment" # handle 7')
    assert rule.comment == "it's # not a comment"
    assert rule.text == 'tcp dport 1 accept comment "it\'s # not a comment"'


def test_named_set_declared_after_its_use_and_over_several_lines() -> None:
    text = (
        "table ip t {\n\tchain c {\n\t\ttcp dport @p dnat to 1.2.3.4\n\t}\n\n"
        "\tset p {\n\t\ttype inet_service\n\t\telements = { 80, 443,\n\t\t\t     8000-8010 }\n\t}\n}\n"
    )
    (rule,) = parse_nft_text(text)[0].chains["c"].rules
    assert rule.matches.dports == ports(80, 443, (8000, 8010))


def test_undeclared_named_map_and_set_stay_conditions() -> None:
    vmap, named_set = parse_rules("iifname vmap @missing", "tcp dport @missing accept")
    assert (vmap.verdict, vmap.matches.other) == ("other", ("iifname vmap @missing",))
    assert (named_set.matches.dports, named_set.matches.other) == ((), ("tcp dport @missing",))


def test_vmap_keeps_the_rules_other_conditions() -> None:
    first, second = parse_rules('ip daddr 10.0.0.1 tcp dport vmap { 80 : accept, 8000-8010 : jump web } comment "x"')
    assert first.matches == Matches(protocol="tcp", dports=ports(80), daddr=AddrMatch("10.0.0.1"), family="ipv4")
    assert second.matches.dports == ports((8000, 8010))
    assert (first.verdict, second.verdict, second.jump) == ("accept", "jump", "web")
    assert first.comment == second.comment == "x"


def test_layout_variants_parse_alike() -> None:
    text = (FIXTURES / "docker29.nft").read_text()
    expanded = subprocess.run(["expand", "--tabs=2"], input=text, capture_output=True, text=True, check=True).stdout
    assert "\t" not in expanded
    variants = [
        expanded,
        text.replace("\n", "\r\n"),
        "# Warning: table ip nat is managed by iptables-nft, do not touch!\n" + text,
        "define LAN = 10.0.0.0/8\n" + text,
        re.sub(r" \{\n", " { # handle 3\n", text),
    ]
    for variant in variants:
        assert _records(parse_nft_text(variant)) == _records(load("docker29"))


def _records(tables: list[Table]) -> list[tuple[object, ...]]:
    """Everything but line numbers, which shift when lines are added."""
    return [
        (
            t.family,
            t.name,
            c.name,
            c.hook,
            c.kind,
            c.priority,
            c.policy,
            r.position,
            r.text,
            r.matches,
            r.verdict,
            r.nat,
        )
        for t in tables
        for c in t.chains.values()
        for r in c.rules
    ]


def test_chain_properties_and_other_blocks_are_skipped() -> None:
    text = (
        "table inet t {\n\tflags dormant\n\tcounter hits {\n\t\tpackets 0 bytes 0\n\t}\n"
        '\tct helper ftp {\n\t\ttype "ftp" protocol tcp\n\t\tl3proto ip\n\t}\n'
        '\tchain c {\n\t\tcomment "chain comment"\n\t\ttcp dport 1 accept\n\t}\n}\n'
    )
    (tab,) = parse_nft_text(text)
    assert list(tab.chains) == ["c"]
    assert [r.text for r in tab.chains["c"].rules] == ["tcp dport 1 accept"]


def test_table_reopened_appends_to_the_same_chain() -> None:
    text = wrap("tcp dport 1 accept") + wrap("tcp dport 2 accept")
    (tab,) = parse_nft_text(text)
    assert [(r.position, r.matches.dports) for r in tab.chains["c"].rules] == [(1, ports(1)), (2, ports(2))]


def test_empty_input_has_no_tables() -> None:
    assert parse_nft_text("") == []
    assert parse_nft_text("# Warning: nothing\n\n") == []


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("table ip t {\n\tchain c {\n\t\taccept\n", 4, "not closed"),
        ("table ip t {\n}\n}\n", 3, "expected 'table"),
        ("flush ruleset\n", 1, "expected 'table"),
        ("table foo t {\n}\n", 1, "unknown table family"),
        ("table ip t {\n\ttcp dport 1 accept\n}\n", 2, "expected a chain"),
        ("table ip t {\n\tchain c {\n\t\ttype nat hook\n\t}\n}\n", 3, "malformed base chain"),
        ("table ip t {\n\tchain c {\n\t\tchain d {\n\t}\n}\n", 3, "unexpected block"),
    ],
)
def test_malformed_input_raises_parse_error_with_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_nft_text(text, source="dump.nft")
    assert caught.value.line == line
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"dump.nft:{line}: ")


# --- properties ------------------------------------------------------------------------------

FIXTURE_LINES = [
    line
    for name in FIXTURE_NAMES
    for line in (FIXTURES / f"{name}.nft").read_text().split("\n")
    if line.strip() and not line.strip().startswith(("table", "chain", "set", "map", "}", "type", "elements", "flags"))
]
TOKENS = sorted({tok for line in FIXTURE_LINES for tok in line.split()} | {"{", "}", '"', "#", "@", "!=", "."})


def _parses_or_parse_error(text: str) -> list[Table] | None:
    try:
        return parse_nft_text(text)
    except ParseError as exc:
        assert exc.line is None or 1 <= exc.line <= text.count("\n") + 1
        return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_only_ever_raises_parse_error(text: str) -> None:
    _parses_or_parse_error(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(FIXTURE_NAMES),
    data=st.data(),
)
def test_mutated_fixtures_only_ever_raise_parse_error(name: str, data: st.DataObject) -> None:
    lines = (FIXTURES / f"{name}.nft").read_text().split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "truncate", "insert", "garble"]))
        if action == "delete":
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        elif action == "truncate":
            lines[at] = lines[at][: data.draw(st.integers(0, len(lines[at])))]
        elif action == "insert":
            lines.insert(at, data.draw(st.text(max_size=40)))
        else:
            cut = data.draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + data.draw(st.text(max_size=8)) + lines[at][cut:]
        if not lines:
            lines = [""]
    _parses_or_parse_error("\n".join(lines))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(TOKENS) | st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=6), max_size=14
    )
)
def test_any_rule_line_inside_a_chain_gives_records(tokens: list[str]) -> None:
    """Whatever a rule line holds, it is never an error and never silently dropped."""
    line = " ".join(tokens).replace("#", "").replace("{", "").replace("}", "").strip()
    if not line or line.startswith(("type ", "policy ", "devices ", "comment ")):
        return
    try:
        rules = parse_nft_text(wrap(line))[0].chains["c"].rules
    except ParseError as exc:  # a NAT statement no nft prints: refused, naming the line
        assert str(exc).startswith("nft:3: ") and "\n" not in str(exc)
        assert {"dnat", "snat", "redirect"} & set(line.split()), line
        return
    if " vmap " not in f" {line} ":
        assert len(rules) == 1
        assert rules[0].text == rule_text(line)


# --- reference dumps from real engines (outside the repository) -------------------------------

_EXPECT = re.compile(r"# expect: (v4|v6) (\w+) (\S+):(\d+) -> \[?([^\]\s]+?)\]?:(\d+)$")


@pytest.mark.skipif(not NATLAYOUTS.is_dir(), reason="reference dumps not present")
@pytest.mark.parametrize("path", sorted(NATLAYOUTS.glob("*.nft")) if NATLAYOUTS.is_dir() else [], ids=lambda p: p.name)
def test_reference_dumps_parse_and_show_their_dnats(path: Path) -> None:
    text = path.read_text()
    tables = parse_nft_text(text, source=path.name)
    assert tables
    dnats = [r for t in tables for c in t.chains.values() for r in c.rules if r.verdict == "dnat"]
    expected = [_EXPECT.match(line) for line in text.splitlines() if line.startswith("# expect: ")]
    if any(line.startswith("# expect: none") for line in text.splitlines()):
        assert dnats == []
    for found in filter(None, expected):
        _, proto, host, host_port, target, target_port = found.groups()
        candidates = [
            r
            for r in dnats
            if r.matches.protocol == proto
            and PortRange(int(host_port), int(host_port)) in r.matches.dports
            and r.nat == NatTarget(target, PortRange(int(target_port), int(target_port)))
        ]
        assert candidates, found.group(0)
        if host != "*":
            assert any(r.matches.daddr == AddrMatch(host) for r in candidates)
