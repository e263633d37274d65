"""Which rule commands a read runs (core.rules.rule_tools), and the native nat chains parsed while nft prints."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from portscope.core.rules import rule_tools
from portscope.core.rules.native_nat import _listings
from portscope.core.rules.nft_text import parse_nft_text
from portscope.core.tools import which

NFT_FIXTURES = Path(__file__).parent.parent / "fixtures" / "nft"


def test_legacy_tables_are_planned_only_when_the_kernel_has_them(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "ip_tables_names").write_text("nat\nfilter\n")
    (tmp_path / "net" / "ip6_tables_names").write_text("")
    assert rule_tools.legacy_tables(str(tmp_path / "net" / "ip_tables_names")) == ["nat", "filter"]
    assert rule_tools.legacy_tables(str(tmp_path / "net" / "missing")) == []
    names = [Path(argv[0]).name for argv in rule_tools.first_stage_commands(str(tmp_path))]
    assert "ip6tables-legacy-save" not in names
    if which("iptables-legacy-save"):
        assert "iptables-legacy-save" in names


def test_list_reads_the_nat_table_only_where_iptables_nft_can(tmp_path: Path) -> None:
    """`list` (scope "nat") runs `iptables-nft -t nat -S`; other commands the whole save; nft lists its chains."""
    (tmp_path / "net").mkdir()
    nat = rule_tools.first_stage_commands(str(tmp_path), "nat")
    whole = rule_tools.first_stage_commands(str(tmp_path), "all")
    for save, tool in (("iptables-nft-save", "iptables-nft"), ("ip6tables-nft-save", "ip6tables-nft")):
        if which(tool):
            assert (which(tool), "-t", "nat", "-S") in nat
        if which(save):
            assert (which(save),) in whole
    assert rule_tools.iptables_nft_command("no-such-save", "no-such-tool", "nat") is None
    nft = which("nft")
    if nft:
        assert (nft, "list", "chains") in whole and (nft, "list", "chains") in nat


def _rules(tables) -> list[dict]:
    return [asdict(r) for t in tables for c in t.chains.values() for r in c.rules]


@pytest.mark.parametrize("name", ["docker29.nft", "netavark.nft", "handmade.nft"])
def test_a_listing_parsed_while_printed_equals_the_text_parse(name: str) -> None:
    """native_nat reads `nft list chain` output line by line as nft prints it (core.tools.run_all's readers);
    the tables are those parse_nft_text makes of the whole text."""
    path = NFT_FIXTURES / name
    text = path.read_text()
    ((result, streamed),) = _listings([["cat", str(path)]], timeout=30)
    assert result.ok and result.stdout == text
    whole = parse_nft_text(text, source=f"cat {path}", lazy=True)
    assert streamed is not None
    assert [(t.family, t.name, list(t.chains)) for t in streamed] == [(t.family, t.name, list(t.chains)) for t in whole]
    assert _rules(streamed) == _rules(whole)
    assert _rules(whole)


def test_a_failed_listing_has_no_tables() -> None:
    ((result, tables),) = _listings([["sh", "-c", "echo 'table ip x {'; exit 3"]], timeout=30)
    assert result.returncode == 3 and tables is None
