"""From rules to bindings: paths from the entry chains, owners, unreachable and virtual-IP DNATs."""

from __future__ import annotations

import os

import pytest

from portscope.core.resolve import resolve
from portscope.core.rules.iptables_text import parse_iptables_text

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "iptables")


def bindings_of(name: str, **kw):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return resolve(parse_iptables_text(f.read()), **kw)


def summary(res) -> set[tuple]:
    return {
        (b.family, b.protocol, b.host_ip, b.host_port, b.host_port_last, b.target_ip, b.target_port, b.owner)
        for b in res.bindings
    }


@pytest.mark.parametrize("flavour", ["nft", "legacy"])
def test_v4_bindings(flavour: str) -> None:
    res = bindings_of(f"{flavour}-v4.save")
    assert summary(res) == {
        ("ipv4", "tcp", "127.0.0.1", 9000, None, "172.17.0.2", 80, "docker"),
        ("ipv4", "tcp", "0.0.0.0", 8080, None, "172.17.0.2", 80, "docker"),
        ("ipv4", "udp", "0.0.0.0", 5353, None, "172.17.0.2", 53, "docker"),
        ("ipv4", "tcp", "0.0.0.0", 8000, 8010, "10.0.0.5", 8000, "manual"),
        ("ipv4", "tcp", "0.0.0.0", 7000, None, "10.0.0.6", 7000, "manual"),
        ("ipv4", "tcp", "0.0.0.0", 7443, None, "10.0.0.6", 7443, "manual"),
        ("ipv4", "tcp", "0.0.0.0", 7500, 7502, "10.0.0.6", 7500, "manual"),
        ("ipv4", "tcp", "0.0.0.0", 2222, None, "10.99.0.5", 22, "manual"),
        ("ipv4", "tcp", "0.0.0.0", 3128, None, "127.0.0.1", 3129, "manual"),
        ("ipv4", "tcp", "0.0.0.0", 4000, None, "10.0.0.7", 4000, "manual"),
    }


@pytest.mark.parametrize("flavour", ["nft", "legacy"])
def test_hooks_respect_contradictions(flavour: str) -> None:
    """OUTPUT's `! -d 127.0.0.0/8` cannot reach a `-d 127.0.0.1` DNAT: only PREROUTING carries it."""
    res = bindings_of(f"{flavour}-v4.save")
    by_port = {b.host_port: b for b in res.bindings}
    assert by_port[9000].hooks == ["prerouting"]
    assert sorted(by_port[8080].hooks) == ["output", "prerouting"]
    assert [r.chain for r in by_port[8080].rules][-1] == "DOCKER"
    assert by_port[2222].rules[0].chain == "PREROUTING" and by_port[2222].rules[-1].chain == "MY-FWD"


@pytest.mark.parametrize("flavour", ["nft", "legacy"])
def test_unreachable_and_virtual_ip(flavour: str) -> None:
    res = bindings_of(f"{flavour}-v4.save")
    kinds = {(u.kind, u.rule.chain, u.rule.nat.address) for u in res.unreachable}
    assert kinds == {("unreachable", "UNUSED-CHAIN", "10.0.0.9"), ("virtual-ip", "PREROUTING", "10.244.0.3")}


@pytest.mark.parametrize("flavour", ["nft", "legacy"])
def test_host_address_makes_a_destination_local(flavour: str) -> None:
    res = bindings_of(f"{flavour}-v4.save", host_addresses=["10.96.0.10"])
    assert ("ipv4", "udp", "10.96.0.10", 53, None, "10.244.0.3", 53, "manual") in summary(res)


@pytest.mark.parametrize("flavour", ["nft", "legacy"])
def test_v6_bindings(flavour: str) -> None:
    res = bindings_of(f"{flavour}-v6.save")
    assert summary(res) == {
        ("ipv6", "tcp", "::", 8080, None, "fd00:1::2", 80, "docker"),
        ("ipv6", "udp", "::1", 5353, None, "fd00:1::2", 53, "docker"),
        ("ipv6", "tcp", "::", 8100, 8110, "fd00:1::3", 8100, "manual"),
    }


def test_unconditional_return_hides_later_rules() -> None:
    text = "-N C\n-A PREROUTING -j C\n-A C -j RETURN\n-A C -p tcp --dport 1 -j DNAT --to-destination 10.0.0.1:1\n"
    res = resolve(parse_iptables_text(text))
    assert res.bindings == [] and [u.kind for u in res.unreachable] == ["shadowed"]
    assert "-A C -j RETURN" in res.unreachable[0].reason


def test_jump_loops_terminate() -> None:
    text = (
        "-N A\n-N B\n-A PREROUTING -j A\n-A A -j B\n-A B -j A\n"
        "-A B -p udp --dport 9 -j DNAT --to-destination 10.0.0.1\n"
    )
    res = resolve(parse_iptables_text(text))
    assert [(b.protocol, b.host_port, b.target_ip) for b in res.bindings] == [("udp", 9, "10.0.0.1")]


def test_a_binding_is_on_every_address_only_if_its_packets_came_by_a_path_naming_none() -> None:
    """Packets to 8080 reach DOCKER only by the `-d 10.0.0.5` jump: the binding is on 10.0.0.5, and that jump is
    its evidence. The jump for port 9000, which names no destination, brings other packets to the chain."""
    text = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n"
        "-A PREROUTING -p tcp -m tcp --dport 9000 -j DOCKER\n"
        "-A PREROUTING -d 10.0.0.5/32 -j DOCKER\n"
        "-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n"
        "-A DOCKER -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.17.0.3:80\nCOMMIT\n"
    )
    res = resolve(parse_iptables_text(text, backend="iptables-nft", family="ipv4"), ("10.0.0.5", "172.17.0.1"))
    assert {(b.host_ip, b.host_port) for b in res.bindings} == {("10.0.0.5", 8080), ("0.0.0.0", 9000)}
    evidence = {b.host_port: [r.text for r in b.rules] for b in res.bindings}
    assert evidence[8080][0] == "-A PREROUTING -d 10.0.0.5/32 -j DOCKER"  # the jump its packets took
    assert evidence[9000][0] == "-A PREROUTING -p tcp -m tcp --dport 9000 -j DOCKER"
