"""The rule tokenizers' `str.split` shortcuts give exactly what their general tokenizers give."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.core.rules.iptables_rule import tokenize, tokenize_quoted
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
