"""The rule tokenizers' `str.split` shortcuts give exactly what their general tokenizers give; and the port
match read from a rule line's text alone (`line_dports`) is what parsing the line gives."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.core.rules.iptables_rule import (
    _ENGINE_SHAPE,
    _walk_dports,
    line_dports,
    parse_rule_line,
    tokenize,
    tokenize_quoted,
)
from portscope.core.rules.nft_text import tokenize as nft_tokenize
from portscope.core.rules.nft_text import tokenize_any

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
#: Characters where the shortcuts and the general tokenizers could part: quotes, escapes, braces, every kind
#: of blank (str.split cuts at all of them, iptables-save's quoting only at spaces and tabs).
TRICKY = st.sampled_from(list(" \t\"'\\{},:.-!ab19\n\r\x0b\x0c\x1c\x85\xa0\u2003\u2028"))
LINES = st.one_of(st.text(TRICKY, max_size=40), st.text(max_size=40))


def _lines(folder: str) -> list[str]:
    out = []
    for root, _dirs, files in os.walk(os.path.join(FIXTURES, folder)):
        for name in sorted(files):
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                out.extend(line.strip() for line in f)
    return [line for line in out if line]


def _outcome(tokenizer, line: str) -> list[str] | str:
    try:
        return tokenizer(line)
    except ValueError as exc:
        return f"ValueError: {exc}"


@settings(max_examples=2000, deadline=None)
@given(LINES)
def test_iptables_shortcut_equals_the_quote_aware_tokenizer(line: str) -> None:
    assert _outcome(tokenize, line) == _outcome(tokenize_quoted, line)


@settings(max_examples=2000, deadline=None)
@given(LINES)
def test_nft_shortcuts_equal_the_regular_expression(line: str) -> None:
    assert nft_tokenize(line) == tokenize_any(line)


@pytest.mark.parametrize(("folder", "tokenizer", "general"), [("iptables", tokenize, tokenize_quoted),
                                                              ("nft", nft_tokenize, tokenize_any)])  # fmt: skip
def test_shortcuts_on_every_fixture_line(folder: str, tokenizer, general) -> None:
    lines = _lines(folder)
    assert len(lines) > 50
    assert [_outcome(tokenizer, line) for line in lines] == [_outcome(general, line) for line in lines]


def test_the_common_lines_take_the_shortcut_and_quoted_ones_do_not() -> None:
    dnat = "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
    assert tokenize(dnat) == dnat.split()
    assert tokenize('-A X -m comment --comment "a \\"b\\" c" -j Y') == ["-A", "X", "-m", "comment", "--comment",
                                                                       'a "b" c', "-j", "Y"]  # fmt: skip
    assert tokenize("-A X -m comment --comment a\x0bb") == ["-A", "X", "-m", "comment", "--comment", "a\x0bb"]
    assert nft_tokenize('iifname != "br x" tcp dport { 80, 443 } accept') == [
        "iifname", "!=", '"br x"', "tcp", "dport", "{ 80, 443 }", "accept"
    ]  # fmt: skip


#: Pieces a rule line is drawn from: port matches under their own module and others', negated ones, options that
#: take a value that looks like an option (a comment or interface named `-m`), targets with their options, and
#: lone tokens, so that a port match can also sit where it is not one.
RULE_PIECES = st.sampled_from(
    ["-m tcp --dport 80", "-m udp --dport 8000:8010", "-m multiport --dports 80,443", "-m tcp --dports 80",
     "-m multiport --dport 80", "-m conntrack --dport 80", "-m tcp ! --dport 80", "! -m tcp --dport 80",
     "-m tcp --destination-port 443", "-m tcp --dport 99999", "-p tcp", "-p udp", "-d 10.0.0.1/32", "-i docker0",
     "--comment", "-i", "-d", "-m", "!", "tcp", "--dport", "80", "x", "--ctstate NEW", '-m comment --comment "a b"',
     "-j DNAT --to-destination 10.0.0.2:80", "-j ACCEPT", "-g DOCKER", "-j RETURN"]
)  # fmt: skip


def _parsed_dports(line: str) -> tuple | None:
    """The parser's (dports, negated) of `line`, read as IPv4 or else IPv6; None when it cannot parse it."""
    for family in ("ipv4", "ipv6"):
        try:
            m = parse_rule_line(line, "iptables-nft", family, "nat", "C", 1, None).matches
        except ValueError:
            continue
        return m.dports, m.dports_negated
    return None


@settings(max_examples=3000, deadline=None)
@given(st.lists(RULE_PIECES, max_size=8))
def test_a_port_match_read_from_the_text_is_the_parsed_one(pieces: list[str]) -> None:
    line = " ".join(["-A", "C", *pieces])
    own, parsed = line_dports(line), _parsed_dports(line)
    if own is not None and parsed is not None:
        assert parsed == (own, False)


def test_a_port_match_read_from_the_text_on_every_fixture_line() -> None:
    """The real tools' lines: wherever the text says, it says what the parser says; and Docker's lines say."""
    lines = [line for line in _lines("iptables") if line.startswith("-A ")]
    said = [(line, own) for line in lines if (own := line_dports(line)) is not None]
    assert len(said) > 20
    for line, own in said:
        assert _parsed_dports(line) == (own, False), line
    docker = "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
    assert (
        line_dports(docker) == parse_rule_line(docker, "iptables-nft", "ipv4", "nat", "DOCKER", 1, None).matches.dports
    )
    assert line_dports("-A X -p tcp -m tcp ! --dport 80 -j RETURN") is None  # negated: the parser must say
    assert line_dports('-A X -m comment --comment "-m tcp --dport 9" -j RETURN') is None  # quoted text


#: Engine-shaped lines and near misses, part by part: names and values that look like options, quotes,
#: non-ASCII digits and blanks, a second protocol or port option, targets with more options.
CHAINS = st.sampled_from(
    ["DOCKER", "DOCKER", "POSTROUTING", "--dport", "-m", "!", "a\u2028b", "K8S.X-1", '"q"', "a\\b"]
)
BEFORE = st.sampled_from(
    ["-s 172.17.0.2/32", "-d 172.17.0.2/32", "! -i docker0", "-o docker0", "-i br-1a2b+", "! -s fd00::2/128",
     "-i -m", "-o !", "-d --dport", '-i "a b"', "-i \u00e9", "-i a\x85b", "-d \u0661\u0662", "-p udp", "-m tcp", "x"]
)  # fmt: skip
PROTOCOL = st.sampled_from(["-p tcp", "-p tcp", "-p udp", "-p sctp", "-p icmp", "", "! -p tcp"])
PORT = st.sampled_from(
    ["-m tcp --dport 8080", "-m tcp --dport 8080", "-m udp --dport 53", "-m sctp --dport 9", "-m tcp --dport 99999",
     "-m tcp --dport 080", "-m tcp --dport \u0668\u0660", "-m tcp ! --dport 81", "-m multiport --dports 80,443",
     "--dport 80", "-m tcp --dport 80 --dport 81", "-m tcp --dport 8000:8010", "-m tcp --destination-port 443"]
)  # fmt: skip
TARGET = st.sampled_from(
    ["-j ACCEPT", "-j MASQUERADE", "-j RETURN", "-j DROP", "-j DNAT --to-destination 172.17.0.2:80",
     "-j DNAT --to-destination [fd00::2]:80", "-j DNAT --to-destination", "-j DNAT --to-destination 1.2.3.4:80-90",
     "-g DOCKER", "-j DNAT --to-destination 1.2.3.4 --random"]
)  # fmt: skip
AFTER = st.sampled_from(["", "", "", "--dport 9", "x", "-j ACCEPT", "-m tcp --dport 80"])


@settings(max_examples=3000, deadline=None)
@given(CHAINS, st.lists(BEFORE, max_size=3), PROTOCOL, PORT, TARGET, AFTER)
def test_the_engine_shape_reads_what_the_walk_reads(
    chain: str, before: list[str], protocol: str, port: str, target: str, after: str
) -> None:
    line = " ".join(part for part in ["-A", chain, *before, protocol, port, target, after] if part)
    assert line_dports(line) == _walk_dports(line)


def test_docker_lines_take_the_engine_shape() -> None:
    for line in [
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
        "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT",
        "-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
        "-A DOCKER ! -i br-1 -p udp -m udp --dport 53 -j DNAT --to-destination [fd00::2]:53",
    ]:
        assert _ENGINE_SHAPE.fullmatch(line) is not None, line
        assert line_dports(line) == _walk_dports(line) is not None
