"""The iptables-save / -S parser, on dumps printed by the real tools (tests/fixtures/iptables)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.core.errors import ParseError
from portscope.core.model import AddrMatch, IfaceMatch, PortRange
from portscope.core.rules.iptables_rule import tokenize
from portscope.core.rules.iptables_text import parse_iptables_text

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "iptables")
FLAVOURS = ("nft", "legacy")


def load(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def nat(text: str, **kw):
    tables = parse_iptables_text(text, **kw)
    (table,) = [t for t in tables if t.name == "nat"]
    return table


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_save_and_S_give_the_same_rules(flavour: str) -> None:
    for fam in ("v4", "v6"):
        save = nat(load(f"{flavour}-{fam}.save"))
        dash_s = nat(load(f"{flavour}-{fam}-nat.S"))
        assert set(save.chains) == set(dash_s.chains)
        for name, chain in save.chains.items():
            assert [r.text for r in chain.rules] == [r.text for r in dash_s.chains[name].rules]
            assert [r.matches for r in chain.rules] == [r.matches for r in dash_s.chains[name].rules]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_families_are_detected_from_addresses(flavour: str) -> None:
    assert nat(load(f"{flavour}-v4.save")).family == "ipv4"
    assert nat(load(f"{flavour}-v6.save")).family == "ipv6"
    assert nat(load(f"{flavour}-v6-nat.S")).family == "ipv6"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_negations_ports_and_targets(flavour: str) -> None:
    table = nat(load(f"{flavour}-v4.save"), backend="iptables-nft", family="ipv4")
    docker = table.chains["DOCKER"].rules
    loopback = docker[1]
    assert loopback.matches.daddr == AddrMatch("127.0.0.1/32")
    assert loopback.matches.in_iface == IfaceMatch("docker0", negated=True)
    assert loopback.matches.protocol == "tcp"
    assert loopback.matches.dports == (PortRange(9000, 9000),)
    assert loopback.verdict == "dnat" and loopback.nat.address == "172.17.0.2" and loopback.nat.ports.first == 80
    assert (loopback.chain, loopback.position, loopback.backend) == ("DOCKER", 2, "iptables-nft")
    output = table.chains["OUTPUT"].rules[0]
    assert output.matches.daddr == AddrMatch("127.0.0.0/8", negated=True)
    assert output.matches.dst_local is True and output.verdict == "jump" and output.jump == "DOCKER"
    assert table.chains["PREROUTING"].hook == "prerouting" and table.chains["DOCKER"].hook is None


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_ranges_multiport_and_comments(flavour: str) -> None:
    pre = nat(load(f"{flavour}-v4.save")).chains["PREROUTING"].rules
    rng = pre[1]
    assert rng.matches.dports == (PortRange(8000, 8010),)
    assert rng.nat.ports == PortRange(8000, 8010)
    assert rng.comment == 'range "quoted" with spaces'
    multi = pre[2]
    assert multi.matches.dports == (PortRange(7000, 7000), PortRange(7443, 7443), PortRange(7500, 7502))
    assert multi.nat.address == "10.0.0.6" and multi.nat.ports is None
    ret = nat(load(f"{flavour}-v4.save")).chains["MY-FWD"].rules[0]
    assert ret.comment == "it's a \\backslash" and ret.verdict == "return"
    unmodelled = pre[6]
    assert any("statistic" in o for o in unmodelled.matches.other)
    assert any("conntrack" in o for o in unmodelled.matches.other)
    assert unmodelled.matches.dports == (PortRange(4000, 4000),)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_ipv6_targets(flavour: str) -> None:
    docker = nat(load(f"{flavour}-v6.save")).chains["DOCKER"].rules
    assert docker[0].nat.address == "fd00:1::2" and docker[0].nat.ports == PortRange(80, 80)
    assert docker[0].matches.saddr == AddrMatch("fe80::/10", negated=True)
    pre = nat(load(f"{flavour}-v6.save")).chains["PREROUTING"].rules
    assert pre[1].nat.address == "fd00:1::3" and pre[1].nat.ports == PortRange(8100, 8110)


def test_S_without_marker_is_nat_and_marker_names_table() -> None:
    assert parse_iptables_text("-P PREROUTING ACCEPT\n")[0].name == "nat"
    tables = parse_iptables_text("# table: filter\n-P INPUT DROP\n-N DOCKER-USER\n")
    assert tables[0].name == "filter" and tables[0].chains["INPUT"].policy == "DROP"


def test_errors_name_the_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_iptables_text("*nat\n:PREROUTING ACCEPT [0:0]\nthis is not a rule\nCOMMIT\n", source="dump.txt")
    assert err.value.line == 3 and "dump.txt:3" in str(err.value)
    with pytest.raises(ParseError) as err:
        parse_iptables_text('-A X -m comment --comment "open\n')
    assert err.value.line == 1
    with pytest.raises(ParseError) as err:
        parse_iptables_text("-A X -p tcp --dport 99999 -j ACCEPT\n")
    assert "65535" in str(err.value)


def test_tokenize_quotes_and_escapes() -> None:
    assert tokenize('-A X -m comment --comment "a \\"b\\" c" -j Y') == [
        "-A",
        "X",
        "-m",
        "comment",
        "--comment",
        'a "b" c',
        "-j",
        "Y",
    ]
    assert tokenize('--comment ""') == ["--comment", ""]


REAL_LINES = [line for f in sorted(os.listdir(FIXTURES)) for line in load(f).splitlines()]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        tables = parse_iptables_text(text)
    except ParseError as exc:
        assert exc.line is not None and exc.line >= 1
    else:
        assert isinstance(tables, list)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(REAL_LINES), max_size=30), st.data())
def test_mutated_real_dumps_never_crash(lines: list[str], data: st.DataObject) -> None:
    mutated = []
    for line in lines:
        if line and data.draw(st.booleans()):
            cut = data.draw(st.integers(0, len(line)))
            line = line[:cut] + data.draw(st.text(max_size=5)) + line[cut + 1 :]
        mutated.append(line)
    text = "\n".join(mutated)
    try:
        tables = parse_iptables_text(text)
    except ParseError as exc:
        assert exc.line is not None and 1 <= exc.line <= len(text.splitlines())
    else:
        assert all(r.position >= 1 for t in tables for c in t.chains.values() for r in c.rules)
