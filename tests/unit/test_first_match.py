"""First-match reach against a plain packet-by-packet interpreter of the same rules.

The interpreter below walks one concrete packet through the chains the way netfilter does (jump
pushes a return point, goto does not, RETURN and a chain's end pop it, DNAT / ACCEPT / DROP stop),
so every binding's `reach` must hold exactly the packets the interpreter sends to its DNAT. The
kernel itself is the judge in tests/differential; this catches a wrong set operation in a second.
"""

from __future__ import annotations

import ipaddress
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.core.diagnose.rule_checks import shadowed_rules
from portscope.core.model import Chain, Rule, Table
from portscope.core.reach.matches import interface_pattern
from portscope.core.reach.space import address_number, unpack
from portscope.core.resolve import Resolution, resolve
from portscope.core.rules.iptables_text import parse_iptables_text

HOST = ("10.0.0.1", "192.168.1.1")
IFACES = ("eth0", "eth1", "docker0", "br-1")
SOURCES = ("10.0.0.5", "172.17.0.2", "8.8.8.8")
DESTINATIONS = ("10.0.0.1", "192.168.1.1", "127.0.0.1", "10.9.9.9")
PROTOCOLS = ("tcp", "udp", "icmp")
PORTS = (80, 81, 8080, 8081)
TARGETS = ("172.17.0.2", "172.17.0.3", "172.17.0.4")
Packet = tuple[str, str, str, str, str, int]  # hook, in interface ("" on output), source, destination, protocol, port


def _save(lines: list[str], chains: tuple[str, ...] = ()) -> list[Table]:
    head = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
    ]
    text = "\n".join([*head, *(f":{c} - [0:0]" for c in chains), *lines, "COMMIT", ""])
    return parse_iptables_text(text, "iptables-nft", "ipv4", "test")


# --- the interpreter ------------------------------------------------------------------------------


def _matches(rule: Rule, packet: Packet) -> bool:
    _, iif, saddr, daddr, proto, port = packet
    m = rule.matches
    assert not m.other, rule.text  # the generator only writes what portscope models
    if m.protocol is not None and (m.protocol == proto) == m.protocol_negated:
        return False
    if m.dports:
        inside = proto in ("tcp", "udp") and any(r.first <= port <= r.last for r in m.dports)
        if inside == m.dports_negated:
            return False
    for match, address in ((m.daddr, daddr), (m.saddr, saddr)):
        if (
            match is not None
            and (ipaddress.ip_address(address) in ipaddress.ip_network(match.network)) == match.negated
        ):
            return False
    if m.in_iface is not None:
        name, prefix = interface_pattern(m.in_iface, rule.backend)
        if (iif.startswith(name) if prefix else iif == name) == m.in_iface.negated:
            return False
    return m.dst_local is None or m.dst_local == (daddr in HOST or daddr.startswith("127."))


def interpret(table: Table, packet: Packet) -> Rule | None:
    """The DNAT a packet meets first, or None (accepted, dropped or no rule)."""
    base = next(c for c in table.chains.values() if c.hook == packet[0] and c.kind == "nat")
    stack: list[tuple[Chain, int]] = []
    chain, index = base, 0
    while True:
        if index >= len(chain.rules):
            if not stack:
                return None
            chain, index = stack.pop()
            continue
        rule = chain.rules[index]
        index += 1
        if not _matches(rule, packet):
            continue
        if rule.verdict == "dnat":
            return rule
        if rule.verdict in ("accept", "drop"):
            return None
        if rule.verdict == "return":
            if not stack:
                return None
            chain, index = stack.pop()
        elif rule.verdict in ("jump", "goto"):
            if rule.verdict == "jump":
                stack.append((chain, index))
            chain, index = table.chains[rule.jump], 0  # type: ignore[index]


def packets() -> list[Packet]:
    out = []
    for hook in ("prerouting", "output"):
        for iif in IFACES if hook == "prerouting" else ("",):
            for saddr in SOURCES:
                for daddr in DESTINATIONS:
                    for proto in PROTOCOLS:
                        for port in PORTS if proto != "icmp" else (0,):
                            out.append((hook, iif, saddr, daddr, proto, port))
    return out


def caught_by(res: Resolution, packet: Packet) -> list[Rule]:
    """The DNAT rules of the bindings whose reach holds `packet`."""
    hook, iif, saddr, daddr, proto, port = packet
    found = []
    for binding in res.bindings:
        reach = binding.reach
        assert reach is not None
        space = reach.space
        at = (
            space.interfaces.atom_of(iif),
            space.addresses.atom_of(address_number(ipaddress.ip_address(saddr))),
            space.addresses.atom_of(address_number(ipaddress.ip_address(daddr))),
            space.protocols.atom_of(proto),
            space.ports.atom_of(port),
        )
        for box in unpack(reach.packets.get(hook, ())):
            if box[0] & 2 and all(box[dim + 1] >> atom & 1 for dim, atom in enumerate(at)):
                found.extend(r for r in binding.rules if r.verdict == "dnat")
                break
    return found


def assert_agrees(lines: list[str], chains: tuple[str, ...] = ()) -> Resolution:
    tables = _save(lines, chains)
    res = resolve(tables, HOST)
    for packet in packets():
        expected = interpret(tables[0], packet)
        local = packet[3] in HOST or packet[3].startswith("127.")
        got = caught_by(res, packet)
        if expected is None or not local:
            assert not got, (packet, [r.text for r in got])
        else:
            assert expected in got, (packet, expected.text, [r.text for r in got])
            port = packet[5]
            elsewhere = {id(r) for r in got if r is not expected and sent_to(r, port) != sent_to(expected, port)}
            assert len(elsewhere) == 0, packet
    return res


def sent_to(rule: Rule, port: int) -> tuple[str | None, int, int]:
    """Where a DNAT sends a packet to `port`: its address and ports (none named: the packet's own). Two DNATs of
    one binding (PREROUTING's `--to 172.17.0.2:80`, OUTPUT's `--to 172.17.0.2`, both for port 80) send alike."""
    nat = rule.nat
    assert nat is not None
    ports = nat.ports
    return nat.address, ports.first if ports else port, ports.last if ports else port


# --- the cases the issue names --------------------------------------------------------------------

DOCKER = [
    "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
    "-A DOCKER -i docker0 -j RETURN",
    "-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
]
APPENDED = "-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80"


def test_a_dnat_appended_after_dockers_jump_is_reached_only_from_docker0() -> None:
    res = assert_agrees([*DOCKER, APPENDED], ("DOCKER",))
    manual = next(b for b in res.bindings if b.target_ip == "172.17.0.3")
    assert manual.reach is not None and manual.reach.restricted
    assert manual.reach.summary() == "only from docker0"
    findings = shadowed_rules(res.shadows)
    assert len(findings) == 1
    assert "DOCKER #2" in findings[0].explanation and "PREROUTING #2" in findings[0].explanation
    assert "insert it before" in findings[0].fix and "PREROUTING #1" in findings[0].fix


def test_a_dnat_after_a_jump_that_catches_every_packet_is_not_a_binding() -> None:
    lines = [DOCKER[0], "-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80", APPENDED]
    res = assert_agrees(lines, ("DOCKER",))
    assert [b.target_ip for b in res.bindings] == ["172.17.0.2"]
    dead = [u for u in res.unreachable if u.rule.text == APPENDED]
    assert [u.kind for u in dead] == ["shadowed"] and "DOCKER #1" in dead[0].reason


@pytest.mark.parametrize("stop", ["-j RETURN", "-j ACCEPT"])
def test_a_return_or_nat_accept_before_a_dnat(stop: str) -> None:
    lines = [
        "-A PREROUTING -j C",
        f"-A C -s 10.0.0.0/8 {stop}",
        "-A C -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80",
    ]
    res = assert_agrees(lines, ("C",))
    (binding,) = res.bindings
    assert binding.reach is not None and binding.reach.summary() == "not from 10.0.0.0/8"


def test_a_goto_whose_chain_ends_stops_the_packet_there() -> None:
    lines = [
        "-A PREROUTING -p tcp -m tcp --dport 80 -g G",
        "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80",
        "-A G -i eth0 -j DNAT --to-destination 172.17.0.3",
    ]
    res = assert_agrees(lines, ("G",))
    assert {b.target_ip for b in res.bindings} == {"172.17.0.3"}
    assert [u.kind for u in res.unreachable] == ["shadowed"]


def test_the_rules_that_win_are_found_by_port_among_many() -> None:
    """A shadowed DNAT names the rules that take its packets: the earlier one on its port, or one on a
    range of ports, found among 2,000 others without replaying them all."""
    lines = [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
        "-A DOCKER -p tcp -m tcp --dport 9000:9100 -j DNAT --to-destination 172.17.0.3:80",
        "-A DOCKER -s 10.0.0.0/8 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.4:80",
        "-A DOCKER -s 11.0.0.0/8 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.4:80",
        *(f"-A DOCKER -p tcp -m tcp --dport {20000 + n} -j DNAT --to-destination 172.18.0.2:80" for n in range(2000)),
        "-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.5:80",
        "-A DOCKER -p tcp -m tcp --dport 9050 -j DNAT --to-destination 172.17.0.6:80",
        "-A DOCKER -s 10.0.0.0/7 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.7:80",
        "-A DOCKER -s 10.0.0.0/6 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.8:80",
    ]
    res = resolve(_save(lines, ("DOCKER",)), HOST, catches=True)
    dead = {u.rule.nat.address: u.reason for u in res.unreachable if u.rule.nat is not None}
    assert set(dead) == {"172.17.0.5", "172.17.0.6", "172.17.0.7"}
    assert "DOCKER #1:" in dead["172.17.0.5"] and "DOCKER #2" not in dead["172.17.0.5"]
    assert "DOCKER #2:" in dead["172.17.0.6"] and "DOCKER #1:" not in dead["172.17.0.6"]
    assert "DOCKER #3:" in dead["172.17.0.7"] and "DOCKER #4:" in dead["172.17.0.7"]
    (partly,) = [s for s in res.shadows if s.loser.nat is not None and s.loser.nat.address == "172.17.0.8"]
    assert [r.position for r in partly.winners.verdicts] == [3, 4]  # #2007 (10.0.0.0/7) is left nothing
    assert not partly.whole


def test_an_unmodelled_match_makes_the_answer_uncertain() -> None:
    lines = [
        "-A PREROUTING -m mark --mark 0x1 -j ACCEPT",
        "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80",
    ]
    res = resolve(_save(lines), HOST)
    (binding,) = res.bindings
    assert binding.reach is not None and not binding.reach.certain
    assert [r.text for r in binding.reach.uncertain_rules if r is not None] == [lines[0]]


def test_shared_sub_chains_cost_rules_not_paths() -> None:
    """40 levels of two jumps each to the next chain are 2**40 paths; the reach needs one pass per chain."""
    depth = 40
    chains = tuple(f"D{i}" for i in range(depth + 1))
    lines = ["-A PREROUTING -j D0"]
    for i in range(depth):
        lines += [f"-A D{i} -s 10.0.0.0/8 -j D{i + 1}", f"-A D{i} -s 11.0.0.0/8 -j D{i + 1}"]
    lines.append(f"-A D{depth} -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80")
    res = resolve(_save(lines, chains), HOST)
    (binding,) = res.bindings
    assert binding.reach is not None and binding.reach.summary() == "only from 10.0.0.0/7"


def test_deep_nesting_has_no_recursion_limit() -> None:
    depth = sys.getrecursionlimit() * 2
    chains = tuple(f"N{i}" for i in range(depth + 1))
    lines = ["-A PREROUTING -j N0", *(f"-A N{i} -j N{i + 1}" for i in range(depth))]
    lines.append(f"-A N{depth} -p udp -m udp --dport 53 -j DNAT --to-destination 172.17.0.2")
    res = resolve(_save(lines, chains), HOST)
    assert [(b.protocol, b.host_port) for b in res.bindings] == [("udp", 53)]


# --- random rulesets ------------------------------------------------------------------------------

_MATCH = st.sampled_from(
    [
        "",
        "-p tcp",
        "-p udp",
        "! -p tcp",
        "-p tcp -m tcp --dport 80",
        "-p tcp -m tcp ! --dport 80",
        "-p udp -m udp --dport 8080:8081",
        "-p tcp -m multiport --dports 80,8081",
        "-d 10.0.0.1/32",
        "! -d 127.0.0.0/8",
        "-d 127.0.0.1/32",
        "-d 10.9.9.9/32",
        "-s 10.0.0.0/8",
        "! -s 10.0.0.0/8",
        "-i eth0",
        "! -i docker0",
        "-i eth+",
        "-m addrtype --dst-type LOCAL",
        "-m addrtype ! --dst-type LOCAL",
    ]
)


@st.composite
def rulesets(draw: st.DrawFn) -> tuple[list[str], tuple[str, ...]]:
    chains = ("A", "B", "C")
    lines = []
    for chain in ("PREROUTING", "OUTPUT", *chains):
        later = chains[chains.index(chain) + 1 :] if chain in chains else chains
        for _ in range(draw(st.integers(0, 4))):
            match = " ".join(m for m in draw(st.lists(_MATCH, max_size=2)) if m)
            if chain == "OUTPUT" and "-i" in match:
                continue  # iptables refuses -i in OUTPUT
            options = ["dnat", "dnat-port", "return", "accept"] + (["jump", "goto"] if later else [])
            kind = draw(st.sampled_from(options))
            target = draw(st.sampled_from(TARGETS))
            if kind == "dnat":
                verdict = f"-j DNAT --to-destination {target}"
            elif kind == "dnat-port" and "! -p" not in match:  # iptables wants a protocol for a port
                match = match if "-p " in match else f"-p tcp {match}"
                verdict = f"-j DNAT --to-destination {target}:{draw(st.sampled_from(PORTS))}"
            elif kind == "dnat-port":
                verdict = f"-j DNAT --to-destination {target}"
            elif kind in ("jump", "goto"):
                verdict = f"-{kind[0]} {draw(st.sampled_from(later))}"
            else:
                verdict = f"-j {kind.upper()}"
            lines.append(f"-A {chain} {match} {verdict}".replace("  ", " "))
    return lines, chains


@settings(max_examples=150, deadline=None)
@given(rulesets())
def test_reach_equals_the_interpreter_on_random_rulesets(ruleset: tuple[list[str], tuple[str, ...]]) -> None:
    assert_agrees(*ruleset)
