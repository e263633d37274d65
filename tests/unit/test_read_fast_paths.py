"""The fast paths of reading give what the general paths give, on the real tools' dumps.

- `parse_iptables_lines(eager_dnat=True)` (lines parsed while a tool prints) == `parse_iptables_text`, also when
  the rules an earlier read parsed are reused (`known`);
- nft's JSON as nft prints it (engine-shaped rules read by `nft_json_fast.RAW_FAST`, without decoding)
  == the same document decoded whole by `json.loads`;
- `resolve(catches=False)`, which names no rules that partly shadow a binding, == `resolve(catches=True)`;
- `Chain.select`, which leaves unparsed the rules whose port match (read from their text) excludes a port,
  parses every rule that can see that port, as the whole parse gives it; and `Chain.move_lines` counts the
  rules' lines further on whether they were parsed before it or after.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from portscope.cli.render_json import binding_json
from portscope.core.model import Table
from portscope.core.resolve import resolve
from portscope.core.rules.iptables_text import known_rules, parse_iptables_lines, parse_iptables_text
from portscope.core.rules.nft_json import parse_nft_json
from portscope.core.rules.nft_json_fast import raw_fast_rule
from portscope.core.rules.nft_statements import TABLE_FAMILIES, RuleSite
from portscope.core.rules.nft_text import parse_nft_text

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "iptables")
SAVES = ("nft-v4.save", "nft-v6.save", "legacy-v4.save", "legacy-v6.save")


def _load(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def _bindings(resolution) -> list[dict]:
    """Each binding as JSON sees it (its reach as `reach.to_json`, not the objects behind it)."""
    return [binding_json(b) for b in resolution.bindings]


def _rules(tables) -> list[dict]:
    return [asdict(r) for t in tables for c in t.chains.values() for r in c.rules]


@pytest.mark.parametrize("name", SAVES)
def test_streamed_parse_equals_text_parse(name: str) -> None:
    text = _load(name)
    family = "ipv6" if "v6" in name else "ipv4"
    streamed = parse_iptables_lines(iter(text.splitlines(keepends=True)), "iptables-nft", family, "x", eager_dnat=True)
    whole = parse_iptables_text(text, "iptables-nft", family, "x")
    assert [(t.family, t.name, list(t.chains)) for t in streamed] == [(t.family, t.name, list(t.chains)) for t in whole]
    assert _rules(streamed) == _rules(whole)
    assert any(r["verdict"] == "dnat" for r in _rules(whole))


@pytest.mark.parametrize("name", SAVES)
def test_a_read_that_reuses_the_last_reads_rules_equals_a_fresh_parse(name: str) -> None:
    """The dump read again with its first DNAT gone: lines read before are the last read's, at their new places."""
    text = _load(name)
    family = "ipv6" if "v6" in name else "ipv4"
    last = parse_iptables_lines(iter(text.splitlines()), "iptables-nft", family, "x", eager_dnat=True)
    lines = text.splitlines()
    del lines[next(i for i, line in enumerate(lines) if "-j DNAT" in line)]
    again = parse_iptables_lines(iter(lines), "iptables-nft", family, "x", eager_dnat=True, known=known_rules(last))
    fresh = parse_iptables_text("\n".join(lines), "iptables-nft", family, "x")
    assert _rules(again) == _rules(fresh)
    before = {r.text: r.matches for t in last for c in t.chains.values() if c.may_dnat for r in c.rules}
    reused = [r for t in again for c in t.chains.values() if c.may_dnat for r in c.rules if r.text in before]
    assert reused and all(r.matches is before[r.text] for r in reused)


@pytest.mark.parametrize("name", SAVES)
def test_lean_resolution_equals_full_resolution(name: str) -> None:
    tables = parse_iptables_text(_load(name), "iptables-nft", "ipv6" if "v6" in name else "ipv4", "x")
    fast = resolve(tables, catches=False)
    full = resolve(tables, catches=True)
    assert _bindings(fast) == _bindings(full)
    assert {id(u.rule) for u in fast.unreachable} == {id(u.rule) for u in full.unreachable}
    assert any(set(b.hooks) == {"prerouting", "output"} for b in fast.bindings)


def test_a_destination_match_keeps_a_binding_to_one_hook() -> None:
    """`-d 127.0.0.1` in DOCKER: reached from PREROUTING only (OUTPUT's jump excludes 127.0.0.0/8)."""
    text = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n"
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n"
        "-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.17.0.2:80\n"
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80\nCOMMIT\n"
    )
    tables = parse_iptables_text(text, "iptables-nft", "ipv4", "x")
    hooks = {b.host_port: b.hooks for b in resolve(tables, catches=False).bindings}
    assert hooks == {9000: ["prerouting"], 8080: ["prerouting", "output"]}
    assert _bindings(resolve(tables, catches=False)) == _bindings(resolve(tables, catches=True))


# --- nft's JSON: engine-shaped rules read straight from nft's text of them -----------------------

NFT_DUMPS = sorted((Path(__file__).parents[1] / "fixtures" / "nft").glob("*.json"))  # real `nft -j` output
NFT_TEXTS = sorted((Path(__file__).parents[1] / "fixtures" / "nft").glob("*.nft"))  # real `nft list ruleset` output


def _nft_chains(tables: list[Table]) -> list[tuple[object, ...]]:
    """Every chain with its properties and every record (reading lazily read chains)."""
    return [
        (t.family, t.name, name, c.hook, c.kind, c.priority, c.policy, [asdict(r) for r in c.rules])
        for t in tables
        for name, c in t.chains.items()
    ]


def _rule_objects(text: str) -> list[dict]:
    return [item for item in json.loads(text)["nftables"] if "rule" in item]


@pytest.mark.parametrize("path", NFT_DUMPS, ids=lambda p: p.name)
@pytest.mark.parametrize("lazy", [False, True])
def test_nft_json_as_nft_prints_it_equals_the_json_loads_path(path: Path, lazy: bool) -> None:
    """nft's own layout takes the fast path; the same document indented is decoded whole by `json.loads`."""
    text = path.read_text()
    fast = parse_nft_json(text, lazy=lazy)
    general = parse_nft_json(json.dumps(json.loads(text), indent=1), lazy=lazy)
    assert _nft_chains(fast) == _nft_chains(general)
    assert any(c.rules for t in general for c in t.chains.values())


def test_each_real_rule_the_fast_path_takes_gets_the_general_paths_record() -> None:
    """Rule by rule: `raw_fast_rule` on nft's text of a rule == the record of the rule decoded alone by `json.loads`;
    and the dumps of Docker and netavark are mostly such rules, so the test above compares real work."""
    taken: dict[str, int] = {}
    for path in NFT_DUMPS:
        taken[path.name] = 0
        for rule in _rule_objects(path.read_text()):
            body = rule["rule"]
            family, table, chain = body["family"], body["table"], body["chain"]
            if family not in TABLE_FAMILIES:
                continue
            site = RuleSite(family=TABLE_FAMILIES[family], table=table, chain=chain, position=1, text="", line=None)
            fast = raw_fast_rule(json.dumps(rule, ensure_ascii=False), site)
            if fast is None:
                continue
            alone = [{"table": {"family": family, "name": table}}, rule]
            (general,) = parse_nft_json(json.dumps({"nftables": alone}, indent=1))[0].chains[chain].rules
            assert fast == general
            taken[path.name] += 1
    assert taken["docker29.json"] >= 10
    assert taken["netavark.json"] >= 5


@pytest.mark.parametrize("name", SAVES)
def test_reading_only_what_bindings_come_from_finds_the_same_bindings(name: str) -> None:
    text = _load(name)
    family = "ipv6" if "v6" in name else "ipv4"
    skipped = [0]
    lean = parse_iptables_lines(iter(text.splitlines(keepends=True)), "iptables-nft", family, "x", True, skipped)
    whole = parse_iptables_text(text, "iptables-nft", family, "x")
    assert _bindings(resolve(lean, catches=False)) == _bindings(resolve(whole, catches=False))
    kept = sum(c.size for t in lean for c in t.chains.values())
    dropped = sum(
        c.size for t in whole for n, c in t.chains.items() if t.name != "nat" or n in ("POSTROUTING", "INPUT")
    )
    assert (kept, skipped[0]) == (sum(c.size for t in whole for c in t.chains.values()) - dropped, dropped)
    assert all(t.name == "nat" or not any(c.size for c in t.chains.values()) for t in lean)


def test_a_table_with_a_chain_iptables_nft_did_not_print_is_read_with_nft() -> None:
    """Independent of iptables-nft's wording: nft listing a chain the iptables view lacks means native rules."""
    from portscope.core.rules.live import shown_by_iptables_nft
    from portscope.core.rules.native_nat import ChainListing

    xt = parse_iptables_text(":PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n", backend="iptables-nft", family="ipv4")
    same = ChainListing("ip", "nat", {"PREROUTING": ("nat", "prerouting"), "DOCKER": None})
    extra = ChainListing("ip", "nat", {"PREROUTING": ("nat", "prerouting"), "prerouting": ("nat", "prerouting")})
    assert shown_by_iptables_nft(same, xt) is True
    assert shown_by_iptables_nft(extra, xt) is False
    assert shown_by_iptables_nft(ChainListing("ip6", "nat", {"PREROUTING": None}), xt) is False  # other family
    assert shown_by_iptables_nft(ChainListing("inet", "filter", {}), xt) is False


def _reads() -> list[tuple[str, Callable[[], list[Table]]]]:
    """Each real dump, as a function that reads it afresh (rules left unparsed, as a live read leaves them)."""
    out: list[tuple[str, Callable[[], list[Table]]]] = [
        (name, lambda name=name: parse_iptables_text(_load(name), backend="iptables-nft")) for name in SAVES
    ]
    out += [(p.name, lambda p=p: parse_nft_json(p.read_text(), lazy=True)) for p in NFT_DUMPS]
    out += [(p.name, lambda p=p: parse_nft_text(p.read_text(), lazy=True)) for p in NFT_TEXTS]
    return out


@pytest.mark.parametrize(("name", "read"), _reads(), ids=[name for name, _ in _reads()])
def test_a_rule_left_unparsed_by_its_port_match_cannot_see_the_port(name: str, read: Callable[[], list[Table]]) -> None:
    """`Chain.select` on a fresh read, for each port a dump names (and one it does not): the rules it parses are
    the whole parse's rules at the same places, and every rule whose destination ports can match the port is
    among them. So a publish that parses only those sees every rule that can touch its port."""
    whole = {(t.family, t.name, name): c.rules for t in read() for name, c in t.chains.items()}
    ports = {r.first for rules in whole.values() for rule in rules for r in rule.matches.dports} | {1}
    skipped = 0
    for port in sorted(ports):
        for t in read():
            for chain_name, chain in t.chains.items():
                chosen = chain.select(lambda own, port=port: any(r.first <= port <= r.last for r in own))
                rules = whole[(t.family, t.name, chain_name)]
                kept = {r.position for r in chosen}  # one nft rule may give several records, at one place
                assert [asdict(r) for r in chosen] == [asdict(r) for r in rules if r.position in kept]
                seeing = {
                    r.position
                    for r in rules
                    if not r.matches.dports
                    or r.matches.dports_negated
                    or any(d.first <= port <= d.last for d in r.matches.dports)
                }
                assert seeing <= kept, (chain_name, port)
                skipped += len(rules) - len(kept)
    assert skipped > 0  # the port matches were read from the text, not only parsed


@pytest.mark.parametrize("path", NFT_TEXTS, ids=lambda p: p.name)
def test_lines_moved_before_or_after_parsing_are_the_same(path: Path) -> None:
    """A chain read as text (its block starting elsewhere in the table's text) has its lines moved while all or
    none of its rules are parsed, or after a read for one port: each rule's line is the whole parse's, that far
    on."""
    whole = parse_nft_text(path.read_text())
    moved = 0
    for parsed_first in ("none", "ports read", "all"):
        for t in parse_nft_text(path.read_text(), lazy=True):
            for name, chain in t.chains.items():
                if parsed_first == "all":
                    _ = chain.rules
                elif parsed_first == "ports read":
                    _ = chain.select(lambda own: False)  # the rules whose text says no port match, parsed apart
                chain.move_lines(7)
                (before,) = [w.chains[name].rules for w in whole if (w.family, w.name) == (t.family, t.name)]
                assert [r.line for r in chain.rules] == [None if r.line is None else r.line + 7 for r in before]
                moved += len(before)
    assert moved
