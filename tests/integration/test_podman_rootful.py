"""Rootful Podman 4.3 with netavark, live in a namespace, on iptables-nft and iptables-legacy (issue 15).

`list --json` against `podman inspect`, conflicts after netavark's rule or container goes, publish and
unpublish with real traffic and netavark's rules byte-identical, and `watch` on Podman's event stream.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import (
    UDP_ECHO,
    Portscope,
    container_ip,
    docker_lines,
    ours,
    refused,
    run_web,
    serves,
)
from tests.sandbox.client import Client, paired_client
from tests.sandbox.engine import wait_for
from tests.sandbox.podman import PODMAN_SETUPS, TOOLS, Podman, ensure_image, start_podman, stop_podman

WEB, ECHO = "pweb", "pecho"


@pytest.fixture(scope="module", params=PODMAN_SETUPS, ids=[s.id for s in PODMAN_SETUPS])
def pod(request: pytest.FixtureRequest) -> Iterator[Podman]:
    """A sandboxed rootful Podman with the busybox image, one iptables flavour at a time."""
    need_root_tools(*TOOLS)
    podman = start_podman(request.param)
    request.addfinalizer(lambda: stop_podman(podman))
    ensure_image(podman)
    yield podman


@pytest.fixture(scope="module")
def pclient(pod: Podman) -> Iterator[Client]:
    with paired_client(pod.ns) as cli:
        yield cli


@dataclass
class Scene:
    pod: Podman
    client: Client
    web_ip: str


@pytest.fixture(scope="module")
def scene(pod: Podman, pclient: Client) -> Scene:
    """A web server on 8080 (and 127.0.0.1:8081), a UDP echo on 5353/udp, published by Podman."""
    web_ip = run_web(pod, WEB, "-p", "8080:80", "-p", "127.0.0.1:8081:80")  # type: ignore[arg-type]
    pod.run_container(ECHO, "-p", "5353:53/udp", "-v", "/usr:/usr:ro", "portscope-busybox:test",
                      "/usr/bin/python3", "-c", UDP_ECHO)  # fmt: skip
    assert serves(pclient, 8080, WEB)
    return Scene(pod=pod, client=pclient, web_ip=web_ip)


def list_json(pod: Podman) -> dict:
    proc = pod.run_portscope("list", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def conflicts_json(pod: Podman) -> dict:
    proc = pod.run_portscope("conflicts", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def published_by_podman(pod: Podman) -> set[tuple]:
    """(host address, host port, protocol, container, container port) of every port `podman inspect` reports."""
    names = pod.podman("ps", "-q").stdout.split()
    out = set()
    for obj in pod.inspect(*names):
        for port_proto, maps in (obj["NetworkSettings"]["Ports"] or {}).items():
            port, proto = port_proto.split("/")
            for m in maps or ():
                out.add((m["HostIp"] or "0.0.0.0", int(m["HostPort"]), proto, obj["Name"].lstrip("/"), int(port)))
    return out


def test_list_shows_exactly_what_podman_publishes(scene: Scene) -> None:
    pod, client = scene.pod, scene.client
    doc = list_json(pod)
    assert doc["engine"]["reachable"] and doc["engine"]["name"] == "Podman Engine", doc["engine"]
    got = {
        (b["host_ip"], b["host_port"], b["protocol"], (b["container"] or {}).get("name"), b["container_port"])
        for b in doc["bindings"]
    }
    assert (
        got
        == published_by_podman(pod)
        == {
            ("0.0.0.0", 8080, "tcp", WEB, 80),
            ("127.0.0.1", 8081, "tcp", WEB, 80),
            ("0.0.0.0", 5353, "udp", ECHO, 53),
        }
    )
    conmon = {obj["Name"].lstrip("/"): obj["State"]["ConmonPid"] for obj in pod.inspect(WEB, ECHO)}
    for b in doc["bindings"]:
        assert b["owner"] == "podman" and b["reported_by_engine"] and b["carriers"] == ["dnat"], b
        rules = b["evidence"]["rules"]
        assert rules[-1]["text"].endswith(f"-j DNAT --to-destination {b['target_ip']}:{b['container_port']}")
        assert all(r["chain"] in ("PREROUTING", "OUTPUT") or r["chain"].startswith("NETAVARK") for r in rules)
        assert {r["backend"] for r in rules} == {f"iptables-{pod.setup.backend}"}
        holders = [(p["name"], p["pid"]) for p in b["evidence"]["processes"]]
        assert holders == [("conmon", conmon[b["container"]["name"]])], holders
    # Real packets: the client reaches both containers through netavark's rules.
    assert serves(client, 8080, WEB)
    assert "pong:ping" in (wait_for(lambda: client.udp_ask(client.engine_ip, 5353, "ping", timeout=2), 20) or "")


def _netavark_jump(pod: Podman, port: int) -> list[str]:
    """The `-A NETAVARK-HOSTPORT-DNAT ... --dport PORT ...` rule as arguments for `iptables -D`."""
    rules = pod.iptables("-t", "nat", "-S", "NETAVARK-HOSTPORT-DNAT").stdout.splitlines()
    (rule,) = [r for r in rules if f"--dport {port} " in r]
    return shlex.split(rule)[2:]


def test_conflicts_find_a_missing_and_a_stale_netavark_rule(scene: Scene) -> None:
    pod, client = scene.pod, scene.client
    assert not [f for f in conflicts_json(pod)["findings"] if f["kind"] in ("missing-rule", "stale-rule")]

    # netavark's rule goes (a firewall reload, an `iptables -F`): Podman still reports the port.
    pod.iptables("-t", "nat", "-D", "NETAVARK-HOSTPORT-DNAT", *_netavark_jump(pod, 8080))
    try:
        assert client.tcp_get(client.engine_ip, 8080, timeout=2) is None  # conmon holds the port, nobody answers
        missing = [f for f in conflicts_json(pod)["findings"] if f["kind"] == "missing-rule"]
        assert [(f["container"], f["port"], f["severity"]) for f in missing] == [(WEB, 8080, "error")], missing
    finally:
        pod.podman("network", "reload", WEB)
    assert serves(client, 8080, WEB)
    assert not [f for f in conflicts_json(pod)["findings"] if f["kind"] == "missing-rule"]

    # A container stops while its rules stay behind (an engine that crashed before tearing them down).
    gone_ip = run_web(pod, "pgone", "-p", "8090:80")  # type: ignore[arg-type]
    save, restore = pod.setup.iptables_binary(4, "save"), pod.setup.iptables_binary(4, "restore")
    with_rules = pod.ns.run([save, "-t", "nat"]).stdout
    pod.podman("stop", "-t", "0", "pgone")
    without = pod.ns.run([save, "-t", "nat"]).stdout
    pod.ns.run([restore, "-w"], input=with_rules)
    try:
        stale = [f for f in conflicts_json(pod)["findings"] if f["kind"] == "stale-rule"]
        assert [(f["port"], f["severity"]) for f in stale] == [(8090, "error")], stale
        assert gone_ip in stale[0]["title"]
        assert any("NETAVARK" in r["chain"] for r in stale[0]["evidence"]["rules"])
    finally:
        pod.ns.run([restore, "-w"], input=without)
        pod.podman("rm", "-f", "-t", "0", "pgone")
    assert not [f for f in conflicts_json(pod)["findings"] if f["kind"] in ("missing-rule", "stale-rule")]


def podman_rules(pod: Podman) -> list[str]:
    """Every nat and filter line that is not portscope's: netavark's chains and rules, counters zeroed."""
    return docker_lines(pod.iptables_save())


def test_publish_and_unpublish_on_a_podman_container(scene: Scene) -> None:
    pod, client = scene.pod, scene.client
    before = podman_rules(pod)
    ps = Portscope(pod)  # type: ignore[arg-type]  # asserts netavark's lines are untouched around every command
    try:
        assert client.tcp_get(client.engine_ip, 9090, timeout=2) is None
        out = ps.ok("publish", WEB, "9090:80", "--reason", "podman test")
        bid = ps.binding_id(out)
        assert serves(client, 9090, WEB)
        (mine,) = [b for b in list_json(pod)["bindings"] if b["host_port"] == 9090]
        assert mine["owner"] == "portscope" and mine["container"]["name"] == WEB and mine["target_ip"] == scene.web_ip
        assert serves(client, 8080, WEB)  # Podman's own binding still works beside it
        ps.ok("unpublish", bid)
        assert refused(client, 9090)
        assert serves(client, 8080, WEB)
    finally:
        ps.clean_up()
    assert podman_rules(pod) == before


def test_watch_follows_podman_events(scene: Scene) -> None:
    pod, client = scene.pod, scene.client
    ps = Portscope(pod)  # type: ignore[arg-type]
    try:
        ps.ok("publish", WEB, "9091:80")
        stop_ip = run_web(pod, "pstop")  # type: ignore[arg-type]
        ps.ok("publish", "pstop", "9092:80")
        assert serves(client, 9091, WEB) and serves(client, 9092, "pstop")
        watcher = ps.popen("watch")
        try:
            first = wait_for(lambda: _guard(pod), timeout=20)
            pod.podman("restart", "-t", "0", WEB)  # a new veth: the guard drops until the binding follows
            assert serves(client, 9091, WEB), "watch did not follow Podman's restart event"
            assert wait_for(lambda: _guard(pod) != first, timeout=20), "the guard still names the old veth"
            # Podman's `die` (which its API filters as `died`): the stopped container's binding loses its rules.
            assert any(f"{stop_ip}:80" in line for line in ours(ps.save()))
            pod.podman("stop", "-t", "0", "pstop")
            gone = wait_for(lambda: not any(f"{stop_ip}:80" in line for line in ours(ps.save())), timeout=20)
            assert gone, "watch did not act on Podman's die event"
        finally:
            watcher.send_signal(signal.SIGTERM)
            try:
                _, err = watcher.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                watcher.kill()
                _, err = watcher.communicate()
        assert watcher.returncode == 0, err
        assert "reconcile failed" not in err, err
        assert container_ip(pod, WEB) and serves(client, 8080, WEB)  # type: ignore[arg-type]
    finally:
        ps.clean_up()


def _guard(pod: Podman) -> str | None:
    proc = pod.ns.run(["nft", "list", "table", "bridge", "portscope"], check=False)
    return proc.stdout if proc.returncode == 0 else None


def test_the_tui_shows_podmans_ports_and_conmon(scene: Scene, tmp_path: Path) -> None:
    capture = tmp_path / "podman.json"
    proc = scene.pod.run_portscope("capture", "-o", str(capture))
    assert proc.returncode == 0, proc.stderr
    ids = {b["host_port"]: b["id"] for b in list_json(scene.pod)["bindings"]}
    asyncio.run(_tui_shows(capture, ids))


async def _tui_shows(capture: Path, ids: dict[int, str]) -> None:
    from portscope.core.snapshot import read_capture
    from portscope.tui.app import PortscopeApp
    from portscope.tui.data import COLUMNS
    from tests.tui.conftest import loaded

    app = PortscopeApp(partial(read_capture, str(capture)), refresh=0, source=str(capture))
    keys = [c.key for c in COLUMNS["ports"]]
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        table = app.view("ports").table
        assert sorted(table.shown_keys) == sorted(ids.values())
        row = table.row_data(ids[8080])
        assert row is not None
        cells = {key: row.cells[keys.index(key)].text for key in ("container", "owner", "carried")}
        assert cells == {"container": WEB, "owner": "podman", "carried": "DNAT"}, cells
        detail = str(app.query_one("#detail-text").render())  # the first row: the UDP echo on 5353
        assert ECHO in detail and "conmon" in detail and "(user root)" in detail, detail
