"""The conflict check on a snapshot narrowed to one port (core/publish/focus.py) says what the whole one says;
and the backend found in the snapshot's own dumps is the one `detect` finds.

Random rule sets in the shapes iptables-save prints (Docker's chains, ranges, multiport, REDIRECT, RETURN,
negations, filter drops), with listeners and containers, are checked at random ports; and every reference
dump of ../shared/natlayouts (skipped where that folder is absent) at each port it names and a few free ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.core.inventory import build_inventory
from portscope.core.model import (
    BackendStatus,
    Container,
    ContainerNetwork,
    EngineInfo,
    HostFacts,
    PortMapping,
    PortRange,
    RuleSource,
    Snapshot,
    Socket,
    Table,
)
from portscope.core.publish import ops
from portscope.core.publish.backend import Backend, engine_backend
from portscope.core.publish.conflicts import verdict
from portscope.core.publish.errors import InputError
from portscope.core.publish.focus import check_port, focus, ports_of_interest
from portscope.core.publish.model import State, StoredBinding
from portscope.core.publish.world import World, engine_in
from portscope.core.rules.formats import load_dump, parse_source
from portscope.core.rules.iptables_text import parse_iptables_text

PORTS = (80, 443, 8000, 8005, 8010, 8080, 8081, 9000, 32768, 40000)
IPS = ("172.17.0.2", "172.17.0.3", "172.18.0.2", "10.0.0.9")
HOST_IPS = ("0.0.0.0", "127.0.0.1", "10.0.0.5", "::")
NETWORKS = (("docker0", "172.17.0.1/16"), ("br-x", "172.18.0.1/16"), ("eth0", "10.0.0.5/24"), ("lo", "127.0.0.1/8"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYOUTS = os.path.normpath(os.path.join(ROOT, "..", "shared", "natlayouts"))
DUMPS = sorted(f for f in os.listdir(LAYOUTS) if not f.endswith(".md")) if os.path.isdir(LAYOUTS) else []

ports = st.sampled_from(PORTS)
protos = st.sampled_from(("tcp", "udp"))
ips = st.sampled_from(IPS)


@st.composite
def port_match(draw: st.DrawFn, proto: str) -> str:
    """A destination-port match as iptables-save prints it: one port, a range, multiport, or negated."""
    kind = draw(st.sampled_from(("one", "range", "multi", "negated")))
    first = draw(ports)
    if kind == "range":
        return f"-p {proto} -m {proto} --dport {first}:{first + draw(st.integers(1, 12))}"
    if kind == "multi":
        return f"-p {proto} -m multiport --dports {first},{draw(ports)}"
    if kind == "negated":
        return f"-p {proto} -m {proto} ! --dport {first}"
    return f"-p {proto} -m {proto} --dport {first}"


@st.composite
def nat_rule(draw: st.DrawFn) -> str:
    proto = draw(protos)
    match = draw(port_match(proto))
    kind = draw(st.sampled_from(("dnat", "dnat", "dnat-range", "dnat-noport", "return", "redirect", "local", "any")))
    where = draw(st.sampled_from(("DOCKER", "DOCKER", "PREROUTING", "OUTPUT")))
    iface = draw(st.sampled_from(("", "! -i docker0 ", "-i docker0 ", "-s 10.0.0.0/8 ")))
    if kind == "any":  # no protocol, no port: every packet that reaches it
        return f"-A {where} {iface}-j DNAT --to-destination {draw(ips)}"
    if kind == "return":
        return f"-A {where} {iface}{match} -j RETURN"
    if kind == "redirect":
        return f"-A {where} {match} -j REDIRECT --to-ports {draw(ports)}"
    ip = draw(ips)
    dest = "-d 127.0.0.1/32 " if kind == "local" else ""
    if kind == "dnat-noport":
        return f"-A {where} {dest}{iface}{match} -j DNAT --to-destination {ip}"
    if kind == "dnat-range":
        first = draw(ports)
        return f"-A {where} {iface}{match} -j DNAT --to-destination {ip}:{first}-{first + draw(st.integers(0, 12))}"
    return f"-A {where} {dest}{iface}{match} -j DNAT --to-destination {ip}:{draw(ports)}"


@st.composite
def later_rule(draw: st.DrawFn) -> tuple[str, str]:
    """(table, line): what packets meet after DNAT (filter, POSTROUTING) or on INPUT."""
    proto, ip, port = draw(protos), draw(ips), draw(ports)
    return draw(
        st.sampled_from(
            (
                ("nat", f"-A POSTROUTING -s {ip}/32 -d {ip}/32 -p {proto} -m {proto} --dport {port} -j MASQUERADE"),
                ("filter", f"-A DOCKER -d {ip}/32 ! -i docker0 -o docker0 -p {proto} -m {proto} --dport {port} "
                 "-j ACCEPT"),
                ("filter", f"-A DOCKER-USER -p {proto} -m {proto} --dport {port} -j DROP"),
                ("filter", "-A DOCKER-USER -s 10.0.0.0/8 -j RETURN"),
                ("filter", f"-A INPUT -p {proto} -m {proto} --dport {port} -j DROP"),
                ("filter", f"-A FORWARD -d {ip}/32 -j REJECT --reject-with icmp-port-unreachable"),
            )
        )
    )  # fmt: skip


def ruleset(nat: list[str], later: list[tuple[str, str]], proxy_jump: bool) -> str:
    """Docker's skeleton with the drawn rules in their chains."""
    output_jump = "-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER" if proxy_jump else (
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER"
    )  # fmt: skip
    return "\n".join(
        [
            "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]", ":DOCKER - [0:0]",
            *[line for line in nat if line.startswith(("-A PREROUTING", "-A OUTPUT"))],
            "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER", output_jump,
            "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
            *[line for t, line in later if t == "nat"],
            *[line for line in nat if line.startswith("-A DOCKER")],
            "COMMIT",
            "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":DOCKER - [0:0]", ":DOCKER-USER - [0:0]",
            "-A FORWARD -j DOCKER-USER", "-A FORWARD -o docker0 -j DOCKER",
            *[line for t, line in later if t == "filter"],
            "-A DOCKER-USER -j RETURN",
            "COMMIT", "",
        ]
    )  # fmt: skip


@st.composite
def sockets(draw: st.DrawFn) -> list[Socket]:
    out = []
    for i in range(draw(st.integers(0, 3))):
        family = draw(st.sampled_from(("ipv4", "ipv6")))
        address = draw(st.sampled_from(("0.0.0.0", "127.0.0.1") if family == "ipv4" else ("::", "::1")))
        out.append(Socket(family, draw(protos), address, draw(ports), pid=100 + i, process=f"p{i}"))
    return out


@st.composite
def containers(draw: st.DrawFn) -> list[Container]:
    out = []
    for i, ip in enumerate(draw(st.lists(ips, max_size=3, unique=True))):
        state = draw(st.sampled_from(("running", "exited")))
        requested = tuple(
            PortMapping(draw(ports), draw(protos), draw(st.sampled_from(("", "127.0.0.1"))), str(draw(ports)))
            for _ in range(draw(st.integers(0, 2)))
        )
        out.append(
            Container(
                id=f"{i:x}" * 64,
                name=f"c{i}",
                image="busybox",
                state=state,
                network_mode="default",
                networks=(ContainerNetwork("bridge", ip if state == "running" else None, None),),
                requested=requested,
                in_force=requested if state == "running" else (),
            )
        )
    return out


def snapshot(text: str, socks: list[Socket], conts: list[Container]) -> Snapshot:
    return with_rules(parse_iptables_text(text, backend="iptables-nft", family="ipv4"), socks, conts)


def with_rules(tables: list, socks: list[Socket], conts: list[Container]) -> Snapshot:
    host = HostFacts(
        hostname="h",
        kernel="6",
        is_root=True,
        addresses=tuple(cidr.split("/")[0] for _, cidr in NETWORKS),
        ephemeral_range=PortRange(32768, 60999),
        networks=NETWORKS,
    )
    return Snapshot(
        host=host,
        taken_at="2026-01-01T00:00:00+00:00",
        tables=tables,
        sockets=socks,
        engine=EngineInfo(reachable=True, name="Docker Engine", version="20.10.24"),
        containers=conts,
    )


def stored(port: int) -> list[StoredBinding]:
    """One binding of portscope's own on `port` (the state is part of the verdict, the same on both sides)."""
    return [
        StoredBinding(
            id="ps-0000beef", kind="publish", host_ip="0.0.0.0", host_port=port, protocol="tcp", container_port=80,
            container_id=None, container_name=None, target_ip="10.0.0.9", last_ip="10.0.0.9", bridge="eth0",
        )
    ]  # fmt: skip


def assert_same(
    make: Callable[[], Snapshot], host_ip: str, port: int, protocol: str, state: list[StoredBinding]
) -> None:
    """The focused verdict, on a fresh read whose rule lines are not parsed yet (so the focus leaves the lines
    of other ports unparsed, as `publish` does), equals the whole host's verdict."""
    focused = check_port(make(), host_ip, port, protocol, state)
    assert focused == verdict(make(), host_ip, port, protocol, state), (host_ip, port, protocol)


@settings(max_examples=300, deadline=None)
@given(
    nat=st.lists(nat_rule(), max_size=8),
    later=st.lists(later_rule(), max_size=6),
    proxy_jump=st.booleans(),
    socks=sockets(),
    conts=containers(),
    host_ip=st.sampled_from(HOST_IPS),
    port=ports,
    protocol=protos,
    ours=st.sampled_from((None, 80, 8080)),
)
def test_focused_verdict_is_the_full_one(
    nat: list[str],
    later: list[tuple[str, str]],
    proxy_jump: bool,
    socks: list[Socket],
    conts: list[Container],
    host_ip: str,
    port: int,
    protocol: str,
    ours: int | None,
) -> None:
    text = ruleset(nat, later, proxy_jump)
    assert_same(lambda: snapshot(text, socks, conts), host_ip, port, protocol, stored(ours) if ours else [])


@settings(max_examples=100, deadline=None)
@given(nat=st.lists(nat_rule(), max_size=8), port=ports, protocol=st.sampled_from(("tcp", "udp", "all")))
def test_focused_bindings_on_the_port_are_the_full_ones(nat: list[str], port: int, protocol: str) -> None:
    """What `block` and unpublish's message look up: the bindings that cover the port, field for field."""
    snap = snapshot(ruleset(nat, [], True), [], [])

    def on_port(bindings: list) -> list:
        return [
            b
            for b in bindings
            if b.protocol in (protocol, "all")
            and b.host_port is not None
            and b.host_port <= port <= (b.host_port_last or b.host_port)
        ]

    full = on_port(build_inventory(snap).bindings)
    narrow = on_port(build_inventory(focus(snap, protocol, port)).bindings)
    assert [(b.id, b.owner, b.container_name, b.hooks) for b in narrow] == [
        (b.id, b.owner, b.container_name, b.hooks) for b in full
    ]


def test_focus_leaves_out_other_ports_and_follows_dnat_to_the_container_port() -> None:
    text = ruleset(
        ["-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
         "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.17.0.3:9000"],
        [("filter", "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT"),
         ("filter", "-A DOCKER -d 172.17.0.3/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 9000 -j ACCEPT")],
        True,
    )  # fmt: skip
    snap = snapshot(text, [Socket("ipv4", "tcp", "0.0.0.0", 9000, pid=1)], [])
    assert ports_of_interest(snap.tables, "tcp", 8080) == [PortRange(8080, 8080), PortRange(80, 80)]
    narrow = focus(snap, "tcp", 8080)
    kept = [r.text for t in narrow.tables for c in t.chains.values() for r in c.rules]
    assert not any("9000" in line for line in kept)
    assert any("--dport 80 " in line for line in kept) and any("--dport 8080 " in line for line in kept)
    assert narrow.sockets == []
    assert check_port(snap, "0.0.0.0", 8080, "tcp", []).errors == [
        "0.0.0.0:8080/tcp is already published by docker (to 172.17.0.2:80)",
        "stale-rule: DNAT tcp/8080 -> 172.17.0.2:80 targets no running container",
    ]
    assert_same(lambda: snapshot(text, [Socket("ipv4", "tcp", "0.0.0.0", 9000, pid=1)], []), "0.0.0.0", 8080, "tcp", [])


def test_the_lines_of_other_ports_are_left_unparsed() -> None:
    """What keeps publish quick on a host with many ports: a rule line whose port match excludes the ports that
    matter is judged by its text and never parsed; the lines for those ports are."""
    accept = "-A DOCKER -d 172.17.0.{n}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport {port} -j ACCEPT"
    text = ruleset(
        ["-A DOCKER ! -i docker0 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.17.0.3:9000"],
        [("filter", accept.format(n=n, port=80)) for n in range(2, 12)]
        + [("filter", accept.format(n=3, port=9000)), ("filter", "-A DOCKER -p tcp -m tcp ! --dport 80 -j DROP")],
        True,
    )
    snap = snapshot(text, [], [])
    narrow = focus(snap, "tcp", 9000)
    whole = next(t for t in snap.tables if t.name == "filter").chains["DOCKER"]
    assert whole.parsed == [] and whole.size == 12  # the host's chain is left as it was read
    kept = next(t for t in narrow.tables if t.name == "filter").chains["DOCKER"].rules
    assert [(r.position, r.text) for r in kept] == [
        (11, accept.format(n=3, port=9000)),
        (12, "-A DOCKER -p tcp -m tcp ! --dport 80 -j DROP"),  # negated: parsed, and it can see 9000
    ]


def test_a_range_that_covers_the_port_is_kept_whole() -> None:
    """A rule for 8000:8010 is diagnosed over its range: a RETURN at 8005 that shadows part of it stays."""
    text = ruleset(
        ["-A DOCKER -p tcp -m tcp --dport 8005 -j RETURN",
         "-A DOCKER -p tcp -m tcp --dport 8000:8010 -j DNAT --to-destination 172.17.0.2:8000-8010"],
        [], True,
    )  # fmt: skip
    snap = snapshot(text, [], [])
    assert PortRange(8000, 8010) in ports_of_interest(snap.tables, "tcp", 8000)
    kept = [r.text for t in focus(snap, "tcp", 8000).tables for c in t.chains.values() for r in c.rules]
    assert any("--dport 8005 -j RETURN" in line for line in kept)
    assert_same(lambda: snapshot(text, [], []), "0.0.0.0", 8000, "tcp", [])


def _dump_ports(text: str) -> set[int]:
    return {int(p) for p in re.findall(r"(?<![0-9.])([0-9]{2,5})(?![0-9.])", text) if 0 < int(p) < 65536}


@pytest.mark.skipif(not DUMPS, reason="../shared/natlayouts is not present")
@pytest.mark.parametrize("name", DUMPS)
def test_natlayouts_focused_verdict_is_the_full_one(name: str) -> None:
    path = os.path.join(LAYOUTS, name)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    candidates = sorted(_dump_ports(text) | {1, 8081, 40000})
    assert candidates
    for port in candidates:
        for protocol in ("tcp", "udp"):
            for host_ip in ("0.0.0.0", "127.0.0.1", "::"):
                assert_same(
                    lambda: with_rules(parse_source(load_dump(path, text)), [], []), host_ip, port, protocol, []
                )


# --------------------------------------------------------------------------- the backend, from the same read

NAT_DOCKER = "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\nCOMMIT\n"
FILTER_DOCKER = "*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER - [0:0]\nCOMMIT\n"
NAT_PLAIN = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"


def read_snapshot(*sources: tuple[str, str], native: tuple[str, ...] = (), unread: bool = False) -> Snapshot:
    """A snapshot as `read_live` leaves it: each (backend, iptables-save text) as a source, native tables."""
    snap = with_rules([], [], [])
    snap.sources = [RuleSource(backend, "ipv4", "iptables-save", text, "test") for backend, text in sources]  # type: ignore[arg-type]
    snap.tables = [Table("nftables", "ipv4", name) for name in native]
    snap.backends = [BackendStatus("nftables", None, read=not unread)]
    return snap


@pytest.mark.parametrize(
    ("snap", "engine"),
    [
        (read_snapshot(("iptables-nft", FILTER_DOCKER + NAT_DOCKER)), "iptables-nft"),
        (
            read_snapshot(("iptables-nft", NAT_PLAIN), ("iptables-legacy", NAT_DOCKER + FILTER_DOCKER)),
            "iptables-legacy",
        ),
        (read_snapshot(("iptables-nft", NAT_PLAIN), native=("docker-bridges",)), "nftables"),
        (read_snapshot(("iptables-nft", FILTER_DOCKER + NAT_PLAIN)), None),  # a filter DOCKER chain alone
        (read_snapshot(("iptables-nft", NAT_DOCKER), unread=True), None),  # a backend unread: ask the kernel
    ],
)
def test_the_engine_backend_comes_from_the_snapshot_as_detect_finds_it(snap: Snapshot, engine: str | None) -> None:
    found = engine_in(snap)
    assert (found.engine if found else None) == engine
    if found is not None:
        nat = {s.backend: s.text for s in snap.sources}
        names = "\n".join(f"table ip {t.name}" for t in snap.tables)
        assert engine_backend(nat.get("iptables-nft", ""), nat.get("iptables-legacy", ""), names)[0] == engine


# --------------------------------------------------------------------------- block and unpublish look at the port


@pytest.mark.parametrize(
    "ref", ["8080/tcp", "ipv4/tcp/0.0.0.0:8080->172.17.0.2:80", "ipv4/tcp/0.0.0.0:8000-8002->172.17.0.4:8000-8002"]
)
def test_block_finds_the_binding_from_the_rules_of_its_port(ref: str) -> None:
    text = ruleset(
        ["-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
         "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8000:8002 -j DNAT --to-destination 172.17.0.4:8000-8002",
         "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.17.0.3:9000"],
        [], True,
    )  # fmt: skip
    world = World(backend=Backend("iptables-nft"), snap=snapshot(text, [], []))
    planned = ops.plan(ops.parse_change("block", ref), world, State())
    wanted = 8000 if "8000" in ref else 8080
    (full,) = [b for b in build_inventory(world.snap).bindings if b.host_port == wanted]
    assert (planned.subject.host_port, planned.subject.last_ip) == (full.host_port, full.target_ip)
    assert planned.subject.container_port == full.target_port


def test_unpublish_of_another_owners_port_names_it() -> None:
    text = ruleset(
        ["-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"], [], True
    )
    world = World(backend=Backend("iptables-nft"), snap=snapshot(text, [], []))
    with pytest.raises(InputError, match=re.escape("8080/tcp is published by docker for 172.17.0.2")):
        ops.plan(ops.parse_change("unpublish", "8080/tcp"), world, State())
