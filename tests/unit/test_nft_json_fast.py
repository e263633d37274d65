"""The nft JSON reader's fast path for the engines' rule shape (`nft_json_fast.RAW_FAST`): the records the
general path makes, and the port match `Chain.select` reads from a rule's text without decoding it."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from portscope.core.model import Chain, Rule
from portscope.core.rules.nft_json import parse_nft_json, raw_fast_rule, statement_term
from portscope.core.rules.nft_statements import Comment, RuleSite, build_rules
from tests.unit.test_nft_json import tcp_dport

_SITE = RuleSite("inet", "t", "c", 4, "", None)  # inet: rules of both families (netavark)


def _general(expressions: list[Any], comment: Any) -> list[Rule]:
    """What the general path records for a rule."""
    terms = [statement_term(e) for e in expressions]
    if isinstance(comment, str):
        terms.append(Comment(comment, f'comment "{comment}"'))
    return build_rules(terms, _SITE._replace(text=" ".join(t.text for t in terms)), {})


def _rule_json(expressions: list[Any], comment: Any) -> str:
    """A rule object as nft prints it (keys in its order, UTF-8 as is)."""
    body: dict[str, Any] = {"family": "ip", "table": "t", "chain": "c", "handle": 7}
    if comment is not None:
        body["comment"] = comment
    body["expr"] = expressions
    return json.dumps({"rule": body}, ensure_ascii=False)


def _fast_path(expressions: list[Any], comment: Any) -> Rule | None:
    """What the fast path records for the rule as nft prints it (None: left to the general path)."""
    return raw_fast_rule(_rule_json(expressions, comment), _SITE)


def _payload(protocol: Any, field: Any) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nine times in ten a value the fast path takes, else one it must leave to the general path (or take)."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda take: valid if take else other)


def _match(left: dict[str, Any], op: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


_OPS = _mostly(st.sampled_from(["==", "!="]), st.sampled_from(["in", "<", 5]))
_IFACE_STMT = st.builds(
    lambda key, op, name: _match({"meta": {"key": key}}, op, name),
    _mostly(st.sampled_from(["iifname", "oifname"]), st.sampled_from(["iif", "mark"])),
    _OPS,
    _mostly(st.sampled_from(["br-x", "docker0", "é", "a b", 'a"b']), st.sampled_from(["", "@ifs", 7])),
)
_ADDR_STMT = st.builds(
    lambda ip, field, op, value: _match(_payload(ip, field), op, value),
    _mostly(st.sampled_from(["ip", "ip6"]), st.just("tcp")),
    _mostly(st.sampled_from(["daddr", "saddr"]), st.just("dport")),
    _OPS,
    _mostly(
        st.sampled_from(["127.0.0.1", "10.0.0.0/8", "172.17.1.2", "fd00::2", "::1"]),
        st.sampled_from(["1.2.3.999", "@s", "", 5, {"prefix": {"addr": "10.0.0.0", "len": 8}}]),
    ),
)
_PORT_STMT = st.builds(
    lambda proto, op, value: _match(_payload(proto, "dport"), op, value),
    _mostly(st.sampled_from(["tcp", "udp", "sctp"]), st.sampled_from(["th", "ip"])),
    _OPS,
    _mostly(
        st.integers(0, 65535)
        | st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(lambda b: {"range": list(b)}),
        st.integers(-1, 99999) | st.sampled_from(["80", True, 8.5, {"set": [80, 443]}, "@ports"]),
    ),
)
_COUNTER_STMT = _mostly(
    st.sampled_from([{"counter": {"packets": 0, "bytes": 0}}, {"counter": {"packets": 12, "bytes": 3400}}]),
    st.sampled_from([{"counter": "named"}, {"counter": None}]),
)
_DNAT_BODY = st.fixed_dictionaries(
    {
        "addr": _mostly(
            st.sampled_from(["192.0.2.2", "fd00::2"]), st.sampled_from(["", "a:b", 5, {"range": ["a", "b"]}])
        )
    },
    optional={
        "family": _mostly(st.sampled_from(["ip", "ip6"]), st.just("inet")),
        "port": _mostly(
            st.integers(0, 65535), st.integers(-1, 99999) | st.sampled_from(["80", None, {"range": [1, 2]}])
        ),
    },
).flatmap(lambda body: _mostly(st.just(body), st.just({**body, "flags": ["random"]})))
_VERDICT_STMT = _mostly(
    _DNAT_BODY.map(lambda body: {"dnat": body})
    | st.builds(lambda kind, target: {kind: {"target": target}}, st.sampled_from(["jump", "goto"]),
                st.sampled_from(["nv_1_dnat", "x y", ""]))
    | st.sampled_from([{"accept": None}, {"drop": None}, {"return": None}, {"masquerade": None}]),
    st.sampled_from(
        [{"jump": {"target": 3}}, {"goto": None}, {"masquerade": {}}, {"masquerade": {"flags": ["random"]}},
         {"continue": None}, {"reject": None}, {"redirect": {"port": 3128}}, {"snat": {"addr": "1.1.1.1"}}]
    ),
)  # fmt: skip
_EXTRA_STMT = _mostly(st.none(), st.sampled_from([{"accept": None}, {"counter": None}, {"notrack": None}]))
_COMMENT = st.none() | st.sampled_from(["DNAT", "", "it's a {x}", "é", 5])


@st.composite
def _rule_expressions(draw: st.DrawFn) -> list[Any]:
    """A rule's expressions, mostly in the engines' shape (what the fast path takes), in nft's order or not."""
    iface = draw(_mostly(st.lists(_IFACE_STMT, max_size=1), st.lists(_IFACE_STMT, min_size=2, max_size=2)))
    addrs = draw(
        _mostly(
            st.lists(_ADDR_STMT, max_size=2, unique_by=lambda m: m["match"]["left"]["payload"]["field"]),
            st.lists(_ADDR_STMT, min_size=2, max_size=3),
        )
    )
    port = draw(_mostly(st.lists(_PORT_STMT, max_size=1), st.lists(_PORT_STMT, min_size=2, max_size=2)))
    counter = draw(st.lists(_COUNTER_STMT, max_size=1))
    verdict, extra = draw(_VERDICT_STMT), draw(_EXTRA_STMT)
    matches = iface + addrs + port
    order = draw(st.randoms(use_true_random=False))
    if order.random() < 0.3:
        order.shuffle(matches)
    return [*matches, *counter, verdict, *([extra] if extra else [])]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(expressions=_rule_expressions(), comment=_COMMENT)
def test_fast_path_gives_the_general_paths_records(expressions: list[Any], comment: Any) -> None:
    try:
        general = _general(expressions, comment)
    except ValueError:  # a rule nft never prints (`dnat ip6 to 192.0.2.2`): the fast path may not record it
        event("refused by the general path")
        with contextlib.suppress(ValueError):
            assert _fast_path(expressions, comment) is None
        return
    fast = _fast_path(expressions, comment)
    event(f"taken by the fast path: {fast is not None}")
    if fast is not None:
        assert [fast] == general


def _lazy_chain(expressions: list[Any], comment: Any) -> Chain:
    """The chain of a one-rule document as nft prints it, read lazily (the rule left undecoded)."""
    head = '{"nftables": [{"table": {"family": "ip", "name": "t", "handle": 1}}, '
    chain = '{"chain": {"family": "ip", "table": "t", "name": "c", "handle": 2}}, '
    (table,) = parse_nft_json(head + chain + _rule_json(expressions, comment) + "]}", lazy=True)
    return table.chains["c"]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(expressions=_rule_expressions(), comment=_COMMENT, port=st.sampled_from([80, 443, 8080]) | st.integers(0, 65535))
def test_a_rule_left_undecoded_for_a_port_cannot_see_it(expressions: list[Any], comment: Any, port: int) -> None:
    """`Chain.select` reads a rule's port match from nft's text of it; a rule it leaves undecoded for `port` is one
    whose every record's destination ports exclude it."""
    try:
        general = _general(expressions, comment)
    except ValueError:
        return
    chosen = _lazy_chain(expressions, comment).select(lambda own: any(r.first <= port <= r.last for r in own))
    event(f"left undecoded: {not chosen}")
    if not chosen:
        for rule in general:
            m = rule.matches
            assert m.dports and not m.dports_negated and not any(r.first <= port <= r.last for r in m.dports)


def test_an_engine_rule_for_another_port_is_left_undecoded() -> None:
    dnat = [tcp_dport(8080), {"counter": {"packets": 0, "bytes": 0}}, {"dnat": {"addr": "192.0.2.2", "port": 80}}]
    chain = _lazy_chain(dnat, None)
    assert chain.select(lambda own: any(r.first <= 80 <= r.last for r in own)) == []
    assert chain.has_pending  # and the chain is left as it was read
    (rule,) = chain.select(lambda own: any(r.first <= 8080 <= r.last for r in own))
    assert rule.matches.dports[0].first == 8080
    negated = [{"match": {"op": "!=", "left": _payload("tcp", "dport"), "right": 8080}}, {"accept": None}]
    assert len(_lazy_chain(negated, None).select(lambda own: False)) == 1  # `!=` is not read from the text


@pytest.mark.parametrize(
    "expressions",
    [
        [{"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "docker0"}},
         tcp_dport(8080), {"counter": {"packets": 0, "bytes": 0}}, {"dnat": {"addr": "192.0.2.2", "port": 80}}],
        [{"match": {"op": "==", "left": _payload("ip", "saddr"), "right": "172.17.1.2"}},
         {"match": {"op": "==", "left": _payload("ip", "daddr"), "right": "172.17.1.2"}}, tcp_dport(80),
         {"counter": {"packets": 0, "bytes": 0}}, {"masquerade": None}],
        [{"match": {"op": "==", "left": _payload("ip6", "daddr"), "right": "fd00::2"}}, tcp_dport(80),
         {"counter": {"packets": 0, "bytes": 0}}, {"accept": None}],
        [tcp_dport(8080), {"dnat": {"family": "ip6", "addr": "fd00::2", "port": 80}}],
        [tcp_dport(8080), {"jump": {"target": "nv_2f259bab_172_18_0_0_nm24_dnat"}}],
        [{"counter": {"packets": 0, "bytes": 0}}, {"drop": None}],
    ],
)  # fmt: skip
def test_fast_path_covers_engine_rules(expressions: list[Any]) -> None:
    fast = _fast_path(expressions, "DNAT")
    assert fast is not None
    assert [fast] == _general(expressions, "DNAT")
    assert _fast_path([tcp_dport(8080), {"dnat": {"addr": "192.0.2.2", "port": 80, "flags": ["random"]}}], None) is None
