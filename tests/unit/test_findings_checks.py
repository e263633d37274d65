"""The pure logic of the diagnose checks, on snapshots built from rule text, sockets and containers.

The same situations are made for real in tests/integration/test_findings_*.py; these pin the decisions
(severity, when a check stays silent) without an engine.
"""

from __future__ import annotations

from dataclasses import fields

from portscope.core.diagnose.run import diagnose
from portscope.core.findings import Finding
from portscope.core.inventory import build_inventory
from portscope.core.model import (
    Container,
    ContainerNetwork,
    EngineInfo,
    HostFacts,
    PortMapping,
    PortRange,
    ProxyArgs,
    Snapshot,
    Socket,
)
from portscope.core.rules.iptables_text import parse_iptables_text

WEB_IP = "172.17.0.2"
DOCKER_NAT = f"""*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination {WEB_IP}:80
COMMIT
"""
BRIDGE = ("docker0", "172.17.0.1/16")
VETH = ("psveth0", "10.203.0.1/24")


def web(*, v6: bool = False, state: str = "running", host_ip: str = "0.0.0.0") -> Container:
    in_force = [PortMapping(80, "tcp", host_ip, "8080")]
    if v6:
        in_force.append(PortMapping(80, "tcp", "::", "8080"))
    return Container(
        id="a" * 64,
        name="web",
        image="busybox",
        state=state,
        network_mode="default",
        networks=(ContainerNetwork("bridge", WEB_IP if state == "running" else None, None),),
        requested=(PortMapping(80, "tcp", "" if host_ip == "0.0.0.0" else host_ip, "8080"),),
        in_force=tuple(in_force) if state == "running" else (),
    )


def snapshot(
    *texts: str,
    sockets: list[Socket] | None = None,
    containers: list[Container] | None = None,
    networks: tuple[tuple[str, str], ...] = (BRIDGE, VETH),
    route_localnet: tuple[str, ...] = (),
) -> Snapshot:
    host = HostFacts(
        hostname="h",
        kernel="6",
        is_root=True,
        addresses=tuple(cidr.split("/")[0] for _, cidr in networks),
        ephemeral_range=PortRange(32768, 60999),
        networks=networks,
        route_localnet=route_localnet,
    )
    tables = [t for text in texts for t in parse_iptables_text(text, backend="iptables-nft", family="ipv4")]
    return Snapshot(
        host=host,
        taken_at="2026-01-01T00:00:00+00:00",
        tables=tables,
        sockets=sockets or [],
        engine=EngineInfo(reachable=True, name="Docker Engine", version="20.10.24"),
        containers=[web()] if containers is None else containers,
    )


def findings(snap: Snapshot, kind: str | None = None) -> list[Finding]:
    out = diagnose(snap, build_inventory(snap))
    return [f for f in out if kind is None or f.kind == kind]


def sock(address: str, port: int, process: str = "python3", pid: int = 4242, proto: str = "tcp") -> Socket:
    family = "ipv6" if ":" in address else "ipv4"
    return Socket(family=family, protocol=proto, address=address, port=port, pid=pid, process=process)


DOCKERD_8080 = sock("0.0.0.0", 8080, "dockerd", 100)


# --------------------------------------------------------------------------- a healthy host


def test_healthy_noproxy_host_has_no_findings() -> None:
    snap = snapshot(DOCKER_NAT, sockets=[DOCKERD_8080], route_localnet=("docker0",))
    assert findings(snap) == []


# --------------------------------------------------------------------------- route-localnet


def test_route_localnet_alone_is_not_a_finding() -> None:
    snap = snapshot(DOCKER_NAT, sockets=[DOCKERD_8080, sock("0.0.0.0", 22)], route_localnet=("docker0", "psveth0"))
    assert findings(snap, "route-localnet") == []


def test_route_localnet_with_a_loopback_service() -> None:
    service = sock("127.0.0.1", 5432, "postgres", 77)
    snap = snapshot(
        DOCKER_NAT,
        sockets=[DOCKERD_8080, service],
        route_localnet=("all", "default", "docker0", "lo", "psveth0"),
    )
    found = {f.title.split(":")[0]: f for f in findings(snap, "route-localnet")}
    assert set(found) == {"route_localnet=1 on all", "route_localnet=1 on docker0", "route_localnet=1 on psveth0"}
    assert found["route_localnet=1 on psveth0"].severity == "warning"
    assert found["route_localnet=1 on all"].severity == "warning"
    assert found["route_localnet=1 on docker0"].severity == "info"
    assert all(f.processes == [service] for f in found.values())
    assert "postgres (pid 77) on 127.0.0.1:5432/tcp" in found["route_localnet=1 on psveth0"].title


def test_route_localnet_ignores_the_engines_own_loopback_sockets() -> None:
    proxy = Socket(
        "ipv4", "tcp", "127.0.0.1", 9000, 5, "docker-proxy", (), ProxyArgs("tcp", "127.0.0.1", 9000, WEB_IP, 80)
    )
    dockerd = sock("127.0.0.1", 9001, "dockerd", 6)
    snap = snapshot(DOCKER_NAT, sockets=[proxy, dockerd], route_localnet=("psveth0",))
    assert findings(snap, "route-localnet") == []


def test_route_localnet_counts_a_v4_mapped_loopback_socket() -> None:
    snap = snapshot(DOCKER_NAT, sockets=[sock("::ffff:127.0.0.1", 6000)], route_localnet=("psveth0",))
    assert [f.severity for f in findings(snap, "route-localnet")] == ["warning"]


# --------------------------------------------------------------------------- family-mismatch


def test_ipv4_only_publish_with_a_ula_or_link_local_is_quiet() -> None:
    networks = (BRIDGE, VETH, ("psveth0", "fd00:203::1/64"), ("psveth0", "fe80::1/64"), ("lo", "::1/128"))
    assert findings(snapshot(DOCKER_NAT, networks=networks), "family-mismatch") == []


def test_ipv4_only_publish_with_a_global_ipv6_address_is_info() -> None:
    networks = (BRIDGE, VETH, ("psveth0", "2001:db8::1/64"))
    (finding,) = findings(snapshot(DOCKER_NAT, networks=networks), "family-mismatch")
    assert (finding.severity, finding.container, finding.port) == ("info", "web", 8080)
    assert "IPv4 only" in finding.title and "2001:db8::1" in finding.title
    assert finding.bindings == [f"ipv4/tcp/0.0.0.0:8080->{WEB_IP}:80"]


def test_global_ipv6_on_a_bridge_does_not_count() -> None:
    networks = (BRIDGE, VETH, ("docker0", "2001:db8:1::1/64"))
    assert findings(snapshot(DOCKER_NAT, networks=networks), "family-mismatch") == []


def test_different_host_ports_per_family_is_a_warning() -> None:
    proxy6 = Socket("ipv6", "tcp", "::", 8081, 9, "docker-proxy", (), ProxyArgs("tcp", "::", 8081, WEB_IP, 80))
    container = web()
    container = Container(
        **{**_fields(container), "in_force": (*container.in_force, PortMapping(80, "tcp", "::", "8081"))}
    )
    (finding,) = findings(snapshot(DOCKER_NAT, sockets=[proxy6], containers=[container]), "family-mismatch")
    assert finding.severity == "warning" and "[8080]" in finding.title and "[8081]" in finding.title


def test_a_hand_dnat_to_a_container_is_not_the_engines_publication() -> None:
    """Proxy on: Docker publishes 8080 on both families; a hand DNAT of 7070 (IPv4) to the same container port
    is no family mismatch."""
    hand = DOCKER_NAT.replace(
        "COMMIT", f"-A PREROUTING -p tcp --dport 7070 -j DNAT --to-destination {WEB_IP}:80\nCOMMIT"
    )
    proxies = [
        Socket(fam, "tcp", ip, 8080, pid, "docker-proxy", (), ProxyArgs("tcp", ip, 8080, WEB_IP, 80))
        for fam, ip, pid in (("ipv4", "0.0.0.0", 7), ("ipv6", "::", 8))
    ]
    snap = snapshot(hand, sockets=proxies, containers=[web(v6=True)])
    assert findings(snap, "family-mismatch") == []


def _fields(c: Container) -> dict:
    return {f.name: getattr(c, f.name) for f in fields(c)}


# --------------------------------------------------------------------------- port-already-allocated


def test_created_container_names_the_process_holding_its_port() -> None:
    holder = sock("0.0.0.0", 8080, "python3", 31)
    (finding,) = findings(snapshot(sockets=[holder], containers=[web(state="created")]), "port-already-allocated")
    assert finding.severity == "error" and finding.processes == [holder]
    assert "python3 (pid 31)" in finding.title and "(created)" in finding.title


def test_a_socket_on_another_address_does_not_hold_the_request() -> None:
    other = sock("10.203.0.1", 9000)
    snap = snapshot(sockets=[other], containers=[web(state="exited", host_ip="127.0.0.1")])
    assert findings(snap, "port-already-allocated") == []


def test_a_free_port_of_a_stopped_container_is_fine() -> None:
    assert findings(snapshot(containers=[web(state="exited")]), "port-already-allocated") == []


# --------------------------------------------------------------------------- loopback-reachable guards

LOOPBACK_NAT = f"""*nat
:PREROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER -d 127.0.0.1/32 -p tcp -m tcp --dport 9000 -j DNAT --to-destination {WEB_IP}:80
COMMIT
"""


def _raw(rule: str) -> str:
    return f"*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING {rule}\nCOMMIT\n"


def test_loopback_publish_without_a_guard_is_an_error() -> None:
    (finding,) = findings(snapshot(LOOPBACK_NAT, containers=[]), "loopback-reachable")
    assert finding.severity == "error" and finding.port == 9000


def test_raw_drops_that_guard_the_loopback_publish() -> None:
    for rule in (
        "-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 9000 -j DROP",
        "-d 127.0.0.0/8 ! -i lo -j DROP",
        "! -i lo -p tcp -m tcp --dport 9000:9010 -j DROP",
    ):
        assert findings(snapshot(LOOPBACK_NAT, _raw(rule), containers=[]), "loopback-reachable") == [], rule


def test_raw_drops_that_do_not_guard_the_loopback_publish() -> None:
    for rule in (
        "-d 127.0.0.5/32 ! -i lo -p tcp -m tcp --dport 9000 -j DROP",  # another loopback address
        "-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 9001 -j DROP",  # another port
        "-s 10.0.0.0/8 -d 127.0.0.1/32 ! -i lo -j DROP",  # some sources only
        "-d 127.0.0.1/32 ! -i lo -p udp -j DROP",  # another protocol
        "-d 127.0.0.1/32 -i eth0 -j DROP",  # one interface only
    ):
        assert len(findings(snapshot(LOOPBACK_NAT, _raw(rule), containers=[]), "loopback-reachable")) == 1, rule


# --------------------------------------------------------------------------- two-backends, shadowed-listener


def test_two_backends_shows_the_odd_side_as_evidence() -> None:
    snap = snapshot(DOCKER_NAT)
    legacy = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.99/32 -j DROP\nCOMMIT\n"
    snap.tables += parse_iptables_text(legacy, backend="iptables-legacy", family="ipv4")
    (finding,) = findings(snap, "two-backends")
    assert [(r.backend, r.text) for r in finding.rules] == [("iptables-legacy", "-A INPUT -s 192.0.2.99/32 -j DROP")]


def test_an_ipv6_listener_beside_an_ipv4_dnat_is_explained_by_family() -> None:
    rival = sock("::", 8080, "python3", 55)
    (finding,) = findings(snapshot(DOCKER_NAT, sockets=[DOCKERD_8080, rival]), "shadowed-listener")
    assert finding.processes == [rival] and finding.severity == "error"
    assert "listens on IPv6" in finding.explanation
