"""publish / unpublish / block with real packets, in each of the four Docker set-ups.

The client namespace (10.203.0.2) and the engine's namespace itself (the host) must reach a
container published by portscope over TCP and UDP, and stop reaching it after unpublish; a
Docker `-p` port is blocked and unblocked; a blank host port and a 127.0.0.1 host address work.
Around every portscope command, Docker's own rules are checked to be unchanged (the harness).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.test_publish_harness import (
    Portscope,
    normalized,
    ours,
    refused,
    remove_containers,
    run_udp_echo,
    run_web,
    serves,
)
from tests.sandbox.client import Client, tcp_get
from tests.sandbox.engine import Engine, wait_for

pytestmark = pytest.mark.integration

WEB, ECHO, DOCKER_WEB = "pub-web", "pub-echo", "pub-docker"


@dataclass
class Scene:
    ps: Portscope
    web_ip: str
    echo_ip: str


@pytest.fixture(scope="module")
def scene(engine: Engine) -> Iterator[Scene]:
    """A web server and a UDP echo without -p, one web server with Docker's `-p 18080:80`."""
    ps = Portscope(engine)
    localnet = engine.ns.run(["sysctl", "-n", "net.ipv4.conf.docker0.route_localnet"]).stdout.strip()
    try:
        scene = Scene(ps, run_web(engine, WEB), run_udp_echo(engine, ECHO))
        run_web(engine, DOCKER_WEB, "-p", "18080:80")
        yield scene
    finally:
        ps.clean_up()
        engine.ns.run(["sysctl", "-w", f"net.ipv4.conf.docker0.route_localnet={localnet}"], check=False)
        remove_containers(engine, WEB, ECHO, DOCKER_WEB)
        assert ours(ps.save()) == [], "portscope's rules are left behind"


def test_publish_tcp_reaches_the_container_then_unpublish_stops_it(scene: Scene, client: Client) -> None:
    ps = scene.ps
    assert client.tcp_get(client.engine_ip, 18081, timeout=2) is None
    out = ps.ok("publish", WEB, "18081:80", "--reason", "integration test")
    bid = ps.binding_id(out)
    assert "0.0.0.0:18081/tcp" in out and scene.web_ip in out
    assert serves(client, 18081, WEB), "the client does not reach the published port"
    from_host = wait_for(lambda: tcp_get(ps.engine.ns, client.engine_ip, 18081, timeout=2), timeout=20)
    assert from_host is not None and f"hello from {WEB}" in from_host, "the host itself does not reach it"
    status = ps.run("status", "--json")
    assert status.returncode == 0, status.stdout
    doc = json.loads(status.stdout)
    (stored,) = [b for b in doc["bindings"] if b["id"] == bid]
    assert (stored["container_name"], stored["why"], stored["target_now"]) == (WEB, "integration test", scene.web_ip)
    listed = json.loads(ps.ok("list", "--json"))["bindings"]
    mine = [b for b in listed if b["host_port"] == 18081]
    assert [(b["owner"], b["target_ip"], b["container"]["name"]) for b in mine] == [("portscope", scene.web_ip, WEB)]
    out = ps.ok("unpublish", bid)
    assert bid in out
    assert refused(client, 18081), "still reachable after unpublish"
    assert not [line for line in ours(ps.save()) if bid in line]


def test_publish_udp(scene: Scene, client: Client) -> None:
    ps = scene.ps
    bid = ps.binding_id(ps.ok("publish", ECHO, "15353:53/udp"))
    reply = wait_for(lambda: client.udp_ask(client.engine_ip, 15353, "ping", timeout=2), timeout=20)
    assert reply == "pong:ping"
    ps.ok("unpublish", "15353/udp")
    assert wait_for(lambda: client.udp_ask(client.engine_ip, 15353, "gone", timeout=1) is None, timeout=20)
    assert not [line for line in ours(ps.save()) if bid in line]


def test_dry_run_prints_the_rules_and_changes_nothing(scene: Scene) -> None:
    ps = scene.ps
    before = normalized(ps.save())
    out = ps.ok("publish", WEB, "18082:80", "--dry-run")
    assert "-j DNAT --to-destination " + f"{scene.web_ip}:80" in out
    assert "-A PORTSCOPE-FORWARD -d " + f"{scene.web_ip}/32" in out
    assert normalized(ps.save()) == before
    assert json.loads(ps.run("status", "--json").stdout)["bindings"] == []


def test_blank_host_port_takes_a_free_ephemeral_port(scene: Scene, client: Client) -> None:
    ps = scene.ps
    low, high = map(int, ps.engine.ns.run(["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).stdout.split())
    listed_before = json.loads(ps.ok("list", "--json"))["bindings"]
    out = ps.ok("publish", WEB, ":80")
    port = ps.host_port(out)
    assert low <= port <= high
    assert port not in {b["host_port"] for b in listed_before}, "the port was published already"
    listeners = ps.engine.ns.run(["ss", "-Hltn", f"sport = :{port}"]).stdout.strip()
    assert listeners == "", f"something listens on {port}: {listeners}"
    assert serves(client, port, WEB)
    ps.ok("unpublish", f"{port}/tcp")
    assert refused(client, port)


def test_loopback_host_address_is_local_only(scene: Scene, client: Client) -> None:
    ps = scene.ps
    bid = ps.binding_id(ps.ok("publish", WEB, "127.0.0.1:19000:80"))
    local = wait_for(lambda: tcp_get(ps.engine.ns, "127.0.0.1", 19000, timeout=2), timeout=20)
    assert local is not None and f"hello from {WEB}" in local, "a local client does not reach 127.0.0.1:19000"
    assert client.tcp_get(client.engine_ip, 19000, timeout=2) is None, "a neighbour reaches a loopback binding"
    rules = ours(ps.save())
    assert not [r for r in rules if "-A PORTSCOPE " in r and bid in r], "a loopback DNAT must not be in PREROUTING"
    raw = ps.engine.ns.run([ps.engine.setup.iptables_binary(4, "save"), "-t", "raw"]).stdout
    guard = f'-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 19000 -m comment --comment "portscope:{bid}" -j DROP'
    assert guard in raw
    conflicts = json.loads(ps.run("conflicts", "--json").stdout)
    assert not [f for f in conflicts["findings"] if f["kind"] == "loopback-reachable" and f.get("port") == 19000]
    ps.ok("unpublish", bid)
    assert wait_for(lambda: tcp_get(ps.engine.ns, "127.0.0.1", 19000, timeout=1) is None, timeout=20)


def test_block_and_unblock_a_docker_port(scene: Scene, client: Client) -> None:
    ps = scene.ps
    assert serves(client, 18080, DOCKER_WEB)
    out = ps.ok("block", "18080", "--reason", "maintenance")
    bid = ps.binding_id(out)
    assert refused(client, 18080), "the blocked Docker port still answers"
    assert ps.engine.docker("inspect", "-f", "{{.State.Running}}", DOCKER_WEB).stdout.strip() == "true"
    assert ps.run("status").returncode == 0
    unpub = ps.run("unpublish", "18080")
    assert unpub.returncode == 2 and "docker" in unpub.stderr and "portscope block" in unpub.stderr
    ps.ok("unblock", bid)
    assert serves(client, 18080, DOCKER_WEB), "unblock did not restore the Docker port"
