"""The nft JSON parser: the same records as the text parser, on the same rulesets as nft printed them."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portscope.core.errors import ParseError
from portscope.core.model import AddrMatch, IfaceMatch, Matches, NatTarget, PortRange, Rule, Table
from portscope.core.rules import nft_json
from portscope.core.rules.nft_json import parse_nft_json, render, statement_term
from portscope.core.rules.nft_statements import (
    Match,
    NatStmt,
    Note,
    VerdictStmt,
    VmapStmt,
)
from portscope.core.rules.nft_text import parse_nft_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nft"
FIXTURE_NAMES = sorted(p.name.removesuffix(".json") for p in FIXTURES.glob("*.json"))


def load_json(name: str) -> list[Table]:
    return parse_nft_json((FIXTURES / f"{name}.json").read_text(), source=f"{name}.json")


def load_text(name: str) -> list[Table]:
    return parse_nft_text((FIXTURES / f"{name}.nft").read_text(), source=f"{name}.nft")


def all_rules(tables: list[Table]) -> list[Rule]:
    return [r for t in tables for c in t.chains.values() for r in c.rules]


def document(*items: dict[str, Any], version: str = "1.0.6") -> str:
    meta = {"metainfo": {"version": version, "release_name": "x", "json_schema_version": 1}}
    return json.dumps({"nftables": [meta, *items]})


def rule(*expr: dict[str, Any], family: str = "inet", chain: str = "c", **extra: Any) -> dict[str, Any]:
    return {"rule": {"family": family, "table": "t", "chain": chain, "handle": 9, "expr": list(expr), **extra}}


def tcp_dport(right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": right}}


def parse_rules(*items: dict[str, Any]) -> list[Rule]:
    return all_rules(parse_nft_json(document(*items)))


# --- the same records as the text parser ----------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_json_and_text_give_the_same_records(name: str) -> None:
    from_json, from_text = load_json(name), load_text(name)
    assert [(t.backend, t.family, t.name, list(t.chains)) for t in from_json] == [
        (t.backend, t.family, t.name, list(t.chains)) for t in from_text
    ]
    for json_table, text_table in zip(from_json, from_text, strict=True):
        for chain_name, text_chain in text_table.chains.items():
            json_chain = json_table.chains[chain_name]
            assert (json_chain.hook, json_chain.kind, json_chain.priority, json_chain.policy) == (
                text_chain.hook,
                text_chain.kind,
                text_chain.priority,
                text_chain.policy,
            )
            assert [_semantics(r) for r in json_chain.rules] == [_semantics(r) for r in text_chain.rules]
            assert [r.text for r in json_chain.rules] == [r.text for r in text_chain.rules]
    assert all_rules(from_text), name


def _semantics(r: Rule) -> tuple[object, ...]:
    return (
        r.backend,
        r.family,
        r.table,
        r.chain,
        r.position,
        r.matches,
        r.verdict,
        r.jump,
        r.nat,
        r.nat_family,
        r.comment,
    )


def test_json_rules_have_no_line() -> None:
    rules = all_rules(load_json("docker29"))
    assert rules
    assert {r.line for r in rules} == {None}


def test_docker_dnat_from_json() -> None:
    v4 = load_json("docker29")[0]
    first = v4.chains["nat-prerouting-and-output"].rules[0]
    assert first.matches == Matches(
        protocol="tcp", dports=(PortRange(8080, 8080),), in_iface=IfaceMatch("bridge1", negated=True)
    )
    assert (first.nat, first.nat_family, first.comment) == (NatTarget("192.0.2.2", PortRange(80, 80)), "ipv4", "DNAT")
    assert first.text == 'iifname != "bridge1" tcp dport 8080 counter dnat to 192.0.2.2:80 comment "DNAT"'


# --- structure -----------------------------------------------------------------------------


def test_tables_and_chains_are_made_from_rules_alone() -> None:
    """`nft -j list chain` gives no table object; a rule may name a chain not listed."""
    tables = parse_nft_json(document(rule(tcp_dport(80), {"accept": None}, chain="lonely")))
    assert [(t.family, t.name, list(t.chains)) for t in tables] == [("inet", "t", ["lonely"])]
    assert tables[0].chains["lonely"].hook is None


def test_chain_priority_is_printed_as_nft_prints_it() -> None:
    def chain(name: str, hook: str, prio: Any) -> dict[str, Any]:
        base = {"family": "ip", "table": "t", "name": name, "handle": 1, "type": "nat", "hook": hook}
        return {"chain": {**base, "prio": prio, "policy": "accept"}}

    items = [chain("a", "prerouting", -100), chain("b", "output", -100), chain("c", "postrouting", 110)]
    items += [chain("d", "forward", 15), chain("e", "prerouting", "dstnat")]
    old = {c.name: c.priority for c in parse_nft_json(document(*items, version="1.0.6"))[0].chains.values()}
    new = {c.name: c.priority for c in parse_nft_json(document(*items, version="1.1.1"))[0].chains.values()}
    assert old == {"a": "dstnat", "b": "-100", "c": "srcnat + 10", "d": "15", "e": "dstnat"}
    assert new["b"] == "dstnat"


def test_other_families_and_objects_are_skipped() -> None:
    items = [
        {"table": {"family": "bridge", "name": "b", "handle": 1}},
        {"chain": {"family": "netdev", "table": "n", "name": "c", "handle": 1}},
        rule({"accept": None}, family="arp"),
        {"counter": {"family": "inet", "name": "hits", "table": "t", "handle": 2, "packets": 0, "bytes": 0}},
        {"flowtable": {"family": "inet", "name": "f", "table": "t", "handle": 3}},
    ]
    assert parse_nft_json(document(*items)) == []


def test_named_sets_and_maps_resolve() -> None:
    items = [
        {"set": {"family": "ip", "name": "p", "table": "t", "type": "inet_service", "elem": [80, {"range": [1, 5]}]}},
        {"set": {"family": "ip", "name": "one", "table": "t", "type": "ifname", "elem": [{"elem": {"val": "lo"}}]}},
        {"map": {"family": "ip", "name": "m", "table": "t", "type": "ifname", "map": "verdict",
                 "elem": [["eth0", {"jump": {"target": "x"}}], ["eth1", {"drop": None}]]}},
        rule(tcp_dport("@p"), {"accept": None}, family="ip"),
        rule({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@one"}}, {"accept": None},
             family="ip"),
        rule({"vmap": {"key": {"meta": {"key": "oifname"}}, "data": "@m"}}, family="ip"),
    ]  # fmt: skip
    ports, one, *vmap = all_rules(parse_nft_json(document(*items)))
    assert ports.matches.dports == (PortRange(80, 80), PortRange(1, 5))
    assert one.matches.in_iface == IfaceMatch("lo")
    assert [(r.matches.out_iface, r.verdict, r.jump, r.position) for r in vmap] == [
        (IfaceMatch("eth0"), "jump", "x", 3),
        (IfaceMatch("eth1"), "drop", None, 3),
    ]
    assert vmap[0].text == "oifname vmap @m"


def test_positions_count_per_chain() -> None:
    items = [rule({"accept": None}, chain="a"), rule({"drop": None}, chain="b"), rule({"return": None}, chain="a")]
    assert [(r.chain, r.position, r.verdict) for r in parse_rules(*items)] == [
        ("a", 1, "accept"),
        ("a", 2, "return"),
        ("b", 1, "drop"),
    ]


# --- expressions and statements --------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ({"payload": {"protocol": "tcp", "field": "dport"}}, "tcp dport"),
        ({"payload": {"base": "nh", "offset": 96, "len": 32}}, "@nh,96,32"),
        ({"meta": {"key": "l4proto"}}, "meta l4proto"),
        ({"meta": {"key": "iifname"}}, "iifname"),
        ({"ct": {"key": "state"}}, "ct state"),
        ({"ct": {"key": "saddr", "dir": "original", "family": "ip"}}, "ct original ip saddr"),
        ({"fib": {"result": "type", "flags": ["daddr", "iif"]}}, "fib daddr . iif type"),
        ({"prefix": {"addr": "127.0.0.0", "len": 8}}, "127.0.0.0/8"),
        ({"range": [8000, 8010]}, "8000-8010"),
        ({"set": [80, 443]}, "{ 80, 443 }"),
        ({"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"meta": {"key": "iifname"}}]},
         "ip daddr . iifname"),
        ({"&": [{"meta": {"key": "mark"}}, 8192]}, "meta mark & 0x00002000"),
        ({"jump": {"target": "x"}}, "jump x"),
        ({"unknown": {"a": 1}}, "unknown a 1"),
        (["established", "related"], "established,related"),
    ],
)  # fmt: skip
def test_render(expr: Any, text: str) -> None:
    assert render(expr) == text


@pytest.mark.parametrize(
    ("stmt", "term"),
    [
        (tcp_dport(8080), Match("tcp dport", "", "8080", "tcp dport 8080")),
        (tcp_dport(80, "!="), Match("tcp dport", "!=", "80", "tcp dport != 80")),
        (tcp_dport({"set": [80, {"range": [1, 2]}]}), Match("tcp dport", "", ("80", "1-2"), "tcp dport { 80, 1-2 }")),
        ({"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "br-x"}},
         Match("iifname", "!=", '"br-x"', 'iifname != "br-x"')),
        ({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
         Match("ct state", "", "established,related", "ct state established,related")),
        ({"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 8192]}, "right": 8192}},
         Match("meta mark & 0x00002000", "==", "0x00002000", "meta mark & 0x00002000 == 0x00002000")),
        ({"dnat": {"addr": "192.0.2.2", "port": 80}}, NatStmt("dnat", None, "192.0.2.2:80", "dnat to 192.0.2.2:80")),
        ({"dnat": {"family": "ip6", "addr": "fd00::2", "port": 80}},
         NatStmt("dnat", "ip6", "[fd00::2]:80", "dnat ip6 to [fd00::2]:80")),
        ({"dnat": {"addr": {"range": ["10.0.0.1", "10.0.0.5"]}, "port": {"range": [80, 90]}}},
         NatStmt("dnat", None, "10.0.0.1-10.0.0.5:80-90", "dnat to 10.0.0.1-10.0.0.5:80-90")),
        ({"dnat": {"family": "ip", "addr": {"map": {"key": {"payload": {"protocol": "tcp", "field": "dport"}},
                                                     "data": "@natm"}}}},
         NatStmt("dnat", "ip", None, "dnat ip to tcp dport map @natm")),
        ({"redirect": {"port": 3128}}, NatStmt("redirect", None, ":3128", "redirect to :3128")),
        ({"masquerade": {"port": {"range": [1024, 2000]}, "flags": "random"}},
         NatStmt("masquerade", None, ":1024-2000", "masquerade to :1024-2000 random")),
        ({"masquerade": None}, NatStmt("masquerade", None, "", "masquerade")),
        ({"jump": {"target": "x"}}, VerdictStmt("jump", "x", "jump x")),
        ({"reject": {"type": "tcp reset"}}, VerdictStmt("reject", None, "reject with tcp reset")),
        ({"reject": {"type": "icmp", "expr": "host-unreachable"}},
         VerdictStmt("reject", None, "reject with icmp host-unreachable")),
        ({"counter": {"packets": 4, "bytes": 8}}, Note("counter", "counter")),
        ({"log": {"prefix": "a b", "level": "info"}}, Note("log", 'log prefix "a b" level info')),
        ({"limit": {"rate": 10, "burst": 5, "per": "second"}}, Note("cond", "limit rate 10/second")),
        ({"limit": {"rate": 5, "burst": 10, "per": "minute", "inv": True}},
         Note("cond", "limit rate over 5/minute burst 10 packets")),
        ({"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}}, Note("mark", "meta mark set 0x00000001")),
        ({"mangle": {"key": {"ct": {"key": "mark"}}, "value": 1}}, Note("effect", "ct mark set 0x00000001")),
        ({"vmap": {"key": {"meta": {"key": "oifname"}}, "data": {"set": [["a", {"accept": None}]]}}},
         VmapStmt("oifname", ('"a" : accept',), 'oifname vmap { "a" : accept }')),
        ({"xt": {"type": "target", "name": "DNAT"}}, Note("effect", "xt target DNAT")),
        ({"xt": {"type": "match", "name": "addrtype"}}, Note("cond", "xt match addrtype")),
        ({"synproxy": {"mss": 1460}}, Note("cond", "synproxy mss 1460")),
        ("not an object", Note("cond", "not an object")),
    ],
)  # fmt: skip
def test_statement_terms(stmt: Any, term: object) -> None:
    assert statement_term(stmt) == term


def test_iptables_nft_xt_target_is_not_a_known_dnat() -> None:
    (xt,) = parse_rules(rule(tcp_dport(8081), {"xt": {"type": "target", "name": "DNAT"}}, family="ip"))
    assert (xt.verdict, xt.nat, xt.matches.dports) == ("other", None, (PortRange(8081, 8081),))


def test_rule_comment_and_inline_vmap() -> None:
    vmap = {"vmap": {"key": {"meta": {"key": "iifname"}}, "data": {"set": [["a", {"goto": {"target": "g"}}]]}}}
    addr = {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "::1"}}
    (only,) = parse_rules(rule(addr, vmap, comment="to g"))
    assert (only.verdict, only.jump, only.comment) == ("goto", "g", "to g")
    assert only.matches == Matches(daddr=AddrMatch("::1"), in_iface=IfaceMatch("a"), family="ipv6")
    assert only.text == 'ip6 daddr ::1 iifname vmap { "a" : goto g } comment "to g"'


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"nftables": [\n{"table": }\n]}', 2, "not JSON"),
        ("table ip t {\n}", 1, "not JSON"),
        ("", 1, "not JSON"),
        ("[1, 2]", 1, '"nftables" list'),
        ('{"nftables": {}}', 1, '"nftables" list'),
        ('{"nftables": [42]}', None, "nftables[0]: expected an object"),
        ('{"nftables": [{"table": []}]}', None, '"table" must be an object'),
        ('{"nftables": [{"table": {"family": "ip"}}]}', None, '"name" must be a non-empty string'),
        ('{"nftables": [{"table": {"family": "foo", "name": "t"}}]}', None, "unknown table family"),
        ('{"nftables": [{"rule": {"family": "ip", "table": "t", "chain": "c", "expr": {}}}]}', None, '"expr" must'),
        ('{"nftables": [{"rule": {"family": "ip", "table": "t", "expr": []}}]}', None, '"chain" must'),
        ("[" * 100_000 + "]" * 100_000, None, "JSON"),
    ],
)
def test_malformed_input_raises_parse_error(text: str, line: int | None, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_nft_json(text, source="dump.json")
    assert caught.value.line == line
    assert message in str(caught.value)
    assert caught.value.source == "dump.json"


# --- properties ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIXTURE_ITEMS = {name: json.loads((FIXTURES / f"{name}.json").read_text())["nftables"] for name in FIXTURE_NAMES}


def _parses_or_parse_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse_nft_json(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_only_ever_raises_parse_error(text: str) -> None:
    _parses_or_parse_error(text)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSON_VALUES, max_size=5))
def test_arbitrary_json_items_only_ever_raise_parse_error(items: list[Any]) -> None:
    _parses_or_parse_error(json.dumps({"nftables": items}))


def _subtrees(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value nested in `value`."""
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _subtrees(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _subtrees(child, (*path, index))
    return found


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(FIXTURE_NAMES), data=st.data())
def test_real_objects_with_a_part_replaced_only_ever_raise_parse_error(name: str, data: st.DataObject) -> None:
    items = copy.deepcopy(FIXTURE_ITEMS[name])
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(items) - 1))
        path = data.draw(st.sampled_from(_subtrees(items[index])))
        replacement = data.draw(JSON_VALUES)
        if not path:
            items[index] = replacement
            continue
        parent = items[index]
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = replacement
    _parses_or_parse_error(json.dumps({"nftables": items}))


# --- lazy reading (nft's own output, read chain by chain) -----------------------------------


def _chains(tables: list[Table]) -> list[tuple[object, ...]]:
    """Every chain with its properties and records (reading the rules of a lazily read chain)."""
    return [
        (t.backend, t.family, t.name, name, c.hook, c.kind, c.priority, c.policy, c.rules)
        for t in tables
        for name, c in t.chains.items()
    ]


def _fixture_text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("layout", ["as nft prints it", "indented", "compact"])
def test_lazy_reading_gives_the_same_records(name: str, layout: str) -> None:
    text = _fixture_text(name)
    if layout == "indented":  # not cut at its objects: decoded whole, rules still wait per chain
        text = json.dumps(json.loads(text), indent=2)
    elif layout == "compact":
        text = json.dumps(json.loads(text), separators=(",", ":"))
    else:
        assert nft_json._cut(text) is not None  # rules left undecoded until their chain is read
    decoded_whole = _chains(parse_nft_json(json.dumps(json.loads(text), indent=1)))
    assert _chains(parse_nft_json(text, lazy=True)) == _chains(parse_nft_json(text)) == decoded_whole


def test_lazy_reading_translates_a_chain_when_its_rules_are_first_used(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = load_json("docker29")[0].chains["nat-prerouting-and-output"].rules
    parsed: list[str] = []
    parse = nft_json._Owner.parse
    monkeypatch.setattr(
        nft_json._Owner, "parse", lambda self, chain, items: parsed.append(chain.name) or parse(self, chain, items)
    )
    v4 = parse_nft_json(_fixture_text("docker29"), lazy=True)[0]
    dnat = v4.chains["nat-prerouting-and-output"]
    assert (dnat.size, dnat.may_dnat) == (3, True)
    assert not v4.chains["filter-forward-in__bridge1"].may_dnat
    assert not v4.chains["nat-PREROUTING"].may_dnat
    assert parsed == []
    assert [r.position for r in dnat.rules] == [1, 2, 3]
    assert parsed == ["nat-prerouting-and-output"]
    assert dnat.rules == expected
    assert parsed == ["nat-prerouting-and-output"]


def test_lazy_reading_hints_every_chain_with_a_dnat_or_redirect() -> None:
    for name in FIXTURE_NAMES:
        for layout in (_fixture_text(name), json.dumps(json.loads(_fixture_text(name)), indent=1)):
            hints = [c.may_dnat for t in parse_nft_json(layout, lazy=True) for c in t.chains.values()]
            actual = [
                any(r.verdict in ("dnat", "redirect") for r in c.rules)
                for t in load_json(name)
                for c in t.chains.values()
            ]
            assert all(hint or not found for hint, found in zip(hints, actual, strict=True)), name
            assert hints != [True] * len(hints), name


def _broken(text: str, chain: str, old: str, new: str) -> str:
    """`text` with `old` replaced by `new` in the first rule of `chain` that holds it."""
    head = f'{{"rule": {{"family": "ip", "table": "docker-bridges", "chain": "{chain}", '
    start = text.index(head)
    while old not in text[start : text.find(', {"rule": ', start)]:
        start = text.index(head, start + 1)
    at = text.index(old, start)
    return text[:at] + new + text[at + len(old) :]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ('"right": 8081}}', '"right": 8081}]', "not JSON"),  # broken JSON inside the rule
        ('"right": 8081}}, ', '"right": 8081}}, {"x": ' + "[" * 50_000 + "]" * 50_000 + "}, ", "JSON"),  # too deep
    ],
)
def test_lazy_reading_keeps_a_rule_it_cannot_read_as_unparsed(old: str, new: str, error: str) -> None:
    text = _fixture_text("docker29")
    broken = _broken(text, "nat-prerouting-and-output", old, new)
    with pytest.raises(ParseError, match=error):
        parse_nft_json(broken)
    good = load_json("docker29")[0].chains["nat-prerouting-and-output"].rules
    tables = parse_nft_json(broken, lazy=True)
    first, unparsed, third = tables[0].chains["nat-prerouting-and-output"].rules
    assert (first, third) == (good[0], good[2])
    assert (unparsed.verdict, unparsed.position, unparsed.nat, unparsed.line) == ("other", 2, None, None)
    assert unparsed.matches.other[0].startswith("unparsed: ")
    assert unparsed.text.startswith('{"rule": {"family": "ip"') and unparsed.text.endswith("}}")
    assert not unparsed.matches.unconditional
    expected = _chains(load_json("docker29"))
    assert [c for c in _chains(tables) if c[3] != "nat-prerouting-and-output"] == [
        c for c in expected if c[3] != "nat-prerouting-and-output"
    ]


def test_lazy_reading_of_a_decoded_document_keeps_a_bad_rule_as_unparsed() -> None:
    items = copy.deepcopy(FIXTURE_ITEMS["docker29"])
    (bad,) = [
        i for i in items if "rule" in i and i["rule"]["chain"] == "nat-PREROUTING" and i["rule"]["family"] == "ip"
    ]
    bad["rule"]["expr"] = {"not": "a list"}
    text = json.dumps({"nftables": items}, indent=1)
    with pytest.raises(ParseError, match='"expr" must be a list'):
        parse_nft_json(text)
    (unparsed,) = parse_nft_json(text, lazy=True)[0].chains["nat-PREROUTING"].rules
    assert unparsed.verdict == "other"
    assert unparsed.matches.other == ('unparsed: "expr" must be a list',)
    assert json.loads(unparsed.text) == bad["rule"]


def test_lazy_reading_still_raises_for_tables_and_chains() -> None:
    text = _fixture_text("docker29").replace('"family": "ip6", "table"', '"family": "ipx", "table"', 1)
    with pytest.raises(ParseError, match="unknown table family 'ipx'"):
        parse_nft_json(text, lazy=True)
    assert nft_json._cut("not JSON") is None
    with pytest.raises(ParseError, match="not JSON"):
        parse_nft_json('{"nftables": [{"metainfo": {}}, {"rule": ', lazy=True)


def _nft_layout(items: list[dict[str, Any]]) -> str:
    return ", ".join(json.dumps(i, ensure_ascii=False) for i in items).join(['{"nftables": [', "]}\n"])


def test_lazy_reading_keeps_the_order_of_objects_not_laid_out_as_nft_prints_them() -> None:
    items = copy.deepcopy(FIXTURE_ITEMS["docker29"])
    for item in items:  # the middle DNAT and a chain, keys reordered
        body = item.get("rule") or item.get("chain")
        if body and body["family"] == "ip" and body.get("chain") == "nat-prerouting-and-output" and "8081" in str(body):
            item["rule"] = dict(reversed(body.items()))
        elif body and body["family"] == "ip6" and body.get("name") == "nat-OUTPUT":
            item["chain"] = dict(reversed(body.items()))
    at = next(i for i, item in enumerate(items) if "rule" in item and item["rule"]["chain"] == "raw-PREROUTING")
    items.insert(at, {"tunnel": {"family": "ip", "name": "future", "table": "docker-bridges", "handle": 99}})
    text = _nft_layout(items)
    cut = nft_json._cut(text)
    assert cut is not None
    assert sum("rule" in item for _, item in cut.others) == 1
    assert [item for _, item in cut.others if "tunnel" in item] == [items[at]]
    assert _chains(parse_nft_json(text, lazy=True)) == _chains(parse_nft_json(text)) == _chains(load_json("docker29"))


def test_lazy_reading_decodes_whole_what_it_cannot_cut() -> None:
    items = copy.deepcopy(FIXTURE_ITEMS["docker29"])
    for item in items:  # a statement that, like a top-level object, starts with "family"
        if "rule" in item and item["rule"]["chain"] == "nat-prerouting-and-output":
            item["rule"]["expr"].insert(1, {"osf": {"family": "ip", "key": "name"}})
    text = _nft_layout(items)
    assert nft_json._cut(text) is None
    tables = parse_nft_json(text, lazy=True)
    assert _chains(tables) == _chains(parse_nft_json(text))
    assert all(
        r.matches.other == ("osf family ip key name",) for r in tables[0].chains["nat-prerouting-and-output"].rules
    )
