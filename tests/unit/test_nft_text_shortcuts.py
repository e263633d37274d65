"""The nft text parser's shortcuts: the one-regex path for engine-shaped rules and chain-by-chain (lazy)
reading, each proven to give exactly what the general path gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from portscope.core.errors import ParseError
from portscope.core.model import Matches, Rule, Table
from portscope.core.rules import nft_text
from portscope.core.rules.nft_statements import RuleSite, build_rules
from portscope.core.rules.nft_text import fast_rule, fast_terms, parse_nft_text, rule_text, terms_from_tokens, tokenize
from tests.unit.nft_support import FIXTURE_NAMES, FIXTURES, NATLAYOUTS, load, ports, rules_of, table, wrap

# --- the common engine shape, recorded without terms -------------------------------------------

_SITE = RuleSite("inet", "t", "c", 3, "", 7)


def _general_rules(line: str) -> list[Rule]:
    return build_rules(terms_from_tokens(tokenize(line)), _SITE._replace(text=line), {})


def _mostly(valid: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """Nine times in ten what the fast path takes, else something it must leave to the general path (or take)."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda take: valid if take else other)


_NEG = st.sampled_from(["", "!= "])
_TEXT_IFACE = st.builds(
    lambda key, neg, name: f'{key} {neg}"{name}"',
    _mostly(st.sampled_from(["iifname", "oifname"]), st.sampled_from(["iif", "meta iifname"])),
    _NEG,
    _mostly(st.sampled_from(["br-x", "docker0", "a b", "@x"]), st.sampled_from(["", "a{b"])),
)
_TEXT_ADDR = st.builds(
    lambda ip, field, neg, addr: f"{ip} {field} {neg}{addr}",
    _mostly(st.sampled_from(["ip", "ip6"]), st.just("tcp")),
    st.sampled_from(["daddr", "saddr"]),
    _NEG,
    _mostly(
        st.sampled_from(["127.0.0.1", "10.0.0.0/8", "fd00::2", "::1"]), st.sampled_from(["1.2.3.999", "@s", "::g"])
    ),
)
_TEXT_PORT = st.builds(
    lambda proto, neg, port: f"{proto} dport {neg}{port}",
    _mostly(st.sampled_from(["tcp", "udp", "sctp"]), st.just("th")),
    _NEG,
    _mostly(
        st.integers(0, 65535).map(str)
        | st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map("{0[0]}-{0[1]}".format),
        st.sampled_from(["99999", "080", "{ 1, 2 }", "@p"]),
    ),
)
_TEXT_ACTION = _mostly(
    st.builds(lambda kw, target: f"dnat {kw}to {target}", st.sampled_from(["", "ip ", "ip6 "]),
              st.sampled_from(["192.0.2.2:80", "[fd00::2]:80", "fd00::2", "10.0.0.5:8000-8010", "1.2.3.4"]))
    | st.builds("{} {}".format, st.sampled_from(["jump", "goto"]), st.sampled_from(["nv_1_dnat", "chain-a"]))
    | st.sampled_from(["accept", "drop", "return", "masquerade"]),
    st.sampled_from(["dnat to 1.2.3.4:99999", "dnat to :80", "dnat to 1.2.3.4 random", "masquerade random",
                     "redirect to :3128", "continue", "reject", "dnat ip to tcp dport map @m", "jump"]),
)  # fmt: skip


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    iface=_mostly(st.lists(_TEXT_IFACE, max_size=1), st.lists(_TEXT_IFACE, min_size=2, max_size=2)),
    addrs=st.lists(_TEXT_ADDR, max_size=2),
    port=_mostly(st.lists(_TEXT_PORT, max_size=1), st.lists(_TEXT_PORT, min_size=2, max_size=2)),
    counter=st.sampled_from(["", "", "counter ", "counter packets 5 bytes 10 "]),
    action=_TEXT_ACTION,
    comment=st.none() | st.sampled_from(["DNAT", "", "it's a {x}", "é"]),
)
def test_fast_rule_gives_the_general_paths_records(
    iface: list[str], addrs: list[str], port: list[str], counter: str, action: str, comment: str | None
) -> None:
    line = rule_text(" ".join([*iface, *addrs, *port]) + f" {counter}{action}").strip()
    if comment is not None:
        line += f' comment "{comment}"'
    terms, record = fast_terms(line), fast_rule(_SITE._replace(text=line))
    event(f"fast terms: {terms is not None}, fast record: {record is not None}")
    general = terms_from_tokens(tokenize(line))
    if terms is not None:
        assert terms == general
    if record is not None:
        assert terms is not None
        assert [record] == build_rules(general, _SITE._replace(text=line), {})


@pytest.mark.parametrize(
    "line",
    [
        'iifname != "docker0" tcp dport 10000 counter dnat to 172.17.1.2:80 comment "DNAT"',
        'iifname != "bridge1" ip daddr 127.0.0.1 tcp dport 8081 counter dnat to 192.0.2.2:80 comment "DNAT"',
        'ip saddr 172.17.1.2 ip daddr 172.17.1.2 tcp dport 80 counter masquerade comment "HAIRPIN"',
        "ip daddr 172.17.1.2 tcp dport 80 counter accept",
        'iifname "docker0" counter accept comment "ICC"',
        'counter drop comment "UNPUBLISHED PORT DROP"',
        "tcp dport 8080 jump nv_2f259bab_172_18_0_0_nm24_dnat",
        "tcp dport 8080 dnat ip6 to [fd5e:822b:4924:c112::2]:80",
    ],
)
def test_fast_rule_covers_engine_rules(line: str) -> None:
    record = fast_rule(_SITE._replace(text=line))
    assert record is not None
    assert [record] == _general_rules(line)
    assert fast_rule(_SITE._replace(text="tcp dport 8080 ct state new dnat to 1.2.3.4")) is None


# --- lazy reading (nft's own output, read chain by chain) -----------------------------------


def _chains(tables: list[Table]) -> list[tuple[object, ...]]:
    """Every chain with its properties and records (reading the rules of a lazily read chain)."""
    return [
        (t.backend, t.family, t.name, name, c.hook, c.kind, c.priority, c.policy, c.rules)
        for t in tables
        for name, c in t.chains.items()
    ]


_LAZY_SOURCES = [FIXTURES / f"{name}.nft" for name in FIXTURE_NAMES] + (
    sorted(NATLAYOUTS.glob("*.nft")) if NATLAYOUTS.is_dir() else []
)


@pytest.mark.parametrize("path", _LAZY_SOURCES, ids=lambda p: p.name)
def test_lazy_reading_gives_the_same_records(path: Path) -> None:
    text = path.read_text()
    assert _chains(parse_nft_text(text, lazy=True)) == _chains(parse_nft_text(text))


def test_lazy_reading_translates_a_chain_when_its_rules_are_first_used(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = rules_of(table(load("docker29"), "ipv4", "docker-bridges"), "nat-prerouting-and-output")
    parsed: list[str] = []
    parse = nft_text._TableState.parse
    monkeypatch.setattr(
        nft_text._TableState, "parse", lambda self, chain, items: parsed.append(chain.name) or parse(self, chain, items)
    )
    v4 = table(parse_nft_text((FIXTURES / "docker29.nft").read_text(), lazy=True), "ipv4", "docker-bridges")
    dnat = v4.chains["nat-prerouting-and-output"]
    assert (dnat.size, dnat.may_dnat) == (3, True)
    assert [c.name for c in v4.chains.values() if c.may_dnat] == ["nat-prerouting-and-output"]
    assert parsed == []
    assert dnat.rules == expected
    assert parsed == ["nat-prerouting-and-output"]


def test_lazy_reading_keeps_a_rule_it_cannot_translate_as_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    def translate(terms: list, site: RuleSite, sets: dict) -> list[Rule]:
        if "ct state" in site.text:
            raise ValueError("cannot translate")
        return build_rules(terms, site, sets)

    text = wrap('tcp dport 80 counter packets 3 bytes 9 ct state new accept comment "x"', "tcp dport 81 accept")
    monkeypatch.setattr(nft_text, "build_rules", translate)
    with pytest.raises(ParseError, match="nft:3: cannot translate"):  # a dump: the line is named (exit 3)
        parse_nft_text(text)
    unparsed, accept = parse_nft_text(text, lazy=True)[0].chains["c"].rules
    assert (unparsed.verdict, unparsed.position, unparsed.line) == ("other", 1, 3)
    assert unparsed.text == 'tcp dport 80 counter ct state new accept comment "x"'
    assert unparsed.matches == Matches(other=("unparsed: cannot translate",))
    assert (accept.verdict, accept.position, accept.matches.dports) == ("accept", 2, ports(81))


def test_lazy_reading_still_raises_for_the_block_structure() -> None:
    with pytest.raises(ParseError, match="not closed"):
        parse_nft_text("table ip t {\n\tchain c {\n\t\taccept\n", lazy=True)
