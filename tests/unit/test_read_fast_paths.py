"""The fast paths of reading give what the general paths give, on the real tools' dumps.

- `parse_iptables_lines(eager_dnat=True)` (lines parsed while a tool prints) == `parse_iptables_text`;
- the one-regex parse of Docker-shaped DNAT lines == the general option walk;
- `resolve(catches=False)`, which names no rules that partly shadow a binding, == `resolve(catches=True)`.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.cli.render_json import binding_json
from portscope.core.record import asdict
from portscope.core.resolve import resolve
from portscope.core.rules.iptables_rule import parse_rule_line, parse_rule_tokens, tokenize
from portscope.core.rules.iptables_text import parse_iptables_lines, parse_iptables_text

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


_OCTET = st.integers(0, 255).map(str)
_IPV4 = st.tuples(_OCTET, _OCTET, _OCTET, _OCTET).map(".".join)
_PORT = st.integers(1, 65535)


@st.composite
def docker_dnat(draw: st.DrawFn) -> str:
    parts = ["-A DOCKER"]
    six = draw(st.booleans())  # an ip6tables rule: both addresses IPv6
    if draw(st.booleans()):
        daddr = f"fd00::{draw(st.integers(1, 0xFFFF)):x}/128" if six else f"{draw(_IPV4)}/32"
        parts.append(f"{'! ' if draw(st.booleans()) else ''}-d {daddr}")
    if draw(st.booleans()):
        parts.append(f"{'! ' if draw(st.booleans()) else ''}-i {draw(st.sampled_from(['docker0', 'br-1a2b', 'eth0']))}")
    proto = draw(st.sampled_from(["tcp", "udp", "sctp"]))
    first = draw(_PORT)
    dport = f"{first}:{draw(st.integers(first, 65535))}" if draw(st.booleans()) else str(first)
    target = draw(_IPV4)
    tport = draw(st.none() | _PORT.map(str) | _PORT.map(lambda p: f"{p}-{min(p + 10, 65535)}"))
    to = f"{target}:{tport}" if tport else target
    if six:
        to = f"[fd00::{draw(st.integers(1, 0xFFFF)):x}]" + (f":{tport}" if tport else "")
    parts += [f"-p {proto} -m {proto} --dport {dport}", f"-j DNAT --to-destination {to}"]
    return " ".join(parts)


@settings(max_examples=300, deadline=None)
@given(docker_dnat())
def test_fast_dnat_parse_equals_the_option_walk(line: str) -> None:
    fast = parse_rule_line(line, "iptables-nft", "ipv6" if "fd00::" in line else "ipv4", "nat", "DOCKER", 1, 1)
    slow = parse_rule_tokens(tokenize(line)[2:])
    assert (fast.matches, fast.verdict, fast.jump, fast.nat, fast.comment) == (
        slow.matches,
        slow.verdict,
        slow.jump,
        slow.nat,
        slow.comment,
    )


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
