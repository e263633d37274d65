"""The nft text parser's shortcut: chain-by-chain (lazy) reading, proven to give exactly what reading
every rule at once gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from portscope.core.errors import ParseError
from portscope.core.model import Matches, Rule, Table
from portscope.core.rules import nft_text
from portscope.core.rules.nft_statements import RuleSite, build_rules
from portscope.core.rules.nft_text import parse_nft_text
from tests.unit.nft_support import FIXTURE_NAMES, FIXTURES, NATLAYOUTS, load, ports, rules_of, table, wrap

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
