"""Findings about host processes and published ports, made for real in each of the four set-ups:
shadowed-listener (a host process on a port a DNAT captures) and port-already-allocated (a container
whose host port a host process holds). The engine's own sockets (dockerd's with the proxy off,
docker-proxy's with it on) are never a finding.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest

from tests.integration.test_findings_harness import (
    HostListener,
    ListenError,
    conflicts,
    module_containers,
    pids,
    remove_containers,
    rule,
    serves,
    socket_owners,
    web_command,
)
from tests.sandbox.client import Client, tcp_talk
from tests.sandbox.engine import IMAGE, Engine, EngineError, wait_for

pytestmark = pytest.mark.integration

WEB = "lis-web"


@pytest.fixture(scope="module")
def web_ip(engine: Engine) -> Iterator[str]:
    with module_containers(engine, {WEB: ["-p", "8080:80", *web_command(WEB)]}) as ips:
        yield ips[WEB]


def test_engine_sockets_are_not_listeners_in_conflict(engine: Engine, web_ip: str) -> None:
    """8080 is held by dockerd (proxy off) or docker-proxy (proxy on) on behalf of the binding: no finding."""
    owner = "docker-proxy" if engine.setup.userland_proxy else "dockerd"
    assert socket_owners(engine, "tcp", 8080) == {owner}
    result = conflicts(engine)
    assert not result.of("shadowed-listener"), result.summary()
    assert result.findings == [], result.summary()


def test_ipv6_listener_beside_an_ipv4_publish(engine: Engine, web_ip: str, client: Client) -> None:
    """A host process on [::]:8080. With the proxy on, docker-proxy holds that socket and the process cannot
    bind. With it off, Docker publishes IPv4 only and nothing stops it: shadowed-listener (error) naming the
    process, and IPv6 clients really reach it while IPv4 clients reach the container."""
    if engine.setup.userland_proxy:
        with pytest.raises(ListenError) as exc, HostListener(engine, "::", 8080):
            pass
        assert exc.value.errno == errno.EADDRINUSE
        return
    with HostListener(engine, "::", 8080, banner="host-v6") as listener:
        result = conflicts(engine)
        over_v6 = tcp_talk(client.ns, client.engine_ip6, 8080, timeout=3)
        over_v4 = client.tcp_get(client.engine_ip, 8080, timeout=3)
    finding = result.one("shadowed-listener", port=8080)
    assert finding["severity"] == "error" and result.returncode == 1
    assert finding["container"] == WEB and finding["protocol"] == "tcp"
    (proc,) = finding["evidence"]["processes"]
    assert (proc["pid"], proc["name"], proc["address"], proc["port"]) == (listener.pid, listener.name, "::", 8080)
    assert f"--to-destination {web_ip}:80" in finding["evidence"]["rules"][-1]["text"]
    assert "IPv6" in finding["explanation"]
    assert over_v6 == "host-v6", over_v6
    assert serves(over_v4, WEB), over_v4


def test_listener_under_a_manual_prerouting_dnat(engine: Engine, web_ip: str, client: Client) -> None:
    """A hand DNAT of 7070 (PREROUTING only) to lis-web, and a host process on 0.0.0.0:7070: shadowed-listener
    in every set-up; outside clients reach the container, local clients the process."""
    dnat = ("-p", "tcp", "--dport", "7070", "-j", "DNAT", "--to-destination", f"{web_ip}:80")
    with rule(engine, "nat", "PREROUTING", *dnat), HostListener(engine, "0.0.0.0", 7070, banner="host-7070") as lis:
        result = conflicts(engine)
        remote = client.tcp_get(client.engine_ip, 7070, timeout=3)
        local = tcp_talk(engine.ns, "127.0.0.1", 7070, timeout=3)
    finding = result.one("shadowed-listener", port=7070)
    assert finding["severity"] == "error" and result.returncode == 1
    assert pids(finding) == {lis.pid}
    assert finding["container"] == WEB
    (dnat_rule,) = finding["evidence"]["rules"]
    assert dnat_rule["chain"] == "PREROUTING" and f"--to-destination {web_ip}:80" in dnat_rule["text"]
    assert "PREROUTING only" in finding["explanation"]
    assert serves(remote, WEB), remote
    assert local == "host-7070", local


def test_port_taken_before_the_container_starts(engine: Engine, web_ip: str) -> None:
    """A host process on 0.0.0.0:7300, then `docker create -p 7300:80`: port-already-allocated (error) naming the
    process and the container; `docker start` really fails with "address already in use"."""
    name = "lis-late"
    with HostListener(engine, "0.0.0.0", 7300) as listener:
        try:
            engine.docker("create", "--name", name, "-p", "7300:80", IMAGE, "sleep", "3600")
            result = conflicts(engine)
            with pytest.raises(EngineError, match="address already in use"):
                engine.docker("start", name)
        finally:
            remove_containers(engine, name)
    finding = result.one("port-already-allocated", container=name)
    assert finding["severity"] == "error" and result.returncode == 1
    assert (finding["port"], finding["protocol"]) == (7300, "tcp")
    assert pids(finding) == {listener.pid}
    assert f"pid {listener.pid}" in finding["title"] and "(created)" in finding["title"]


def test_port_taken_while_the_container_is_stopped(engine: Engine, web_ip: str) -> None:
    """A stopped container whose host port a host process took meanwhile: port-already-allocated (error); it
    really cannot start again until the process goes."""
    name = "lis-stopped"
    engine.run_container(name, "-p", "7301:80", IMAGE, "sleep", "3600")
    try:
        engine.docker("stop", "-t", "0", name)
        assert not conflicts(engine).of("port-already-allocated"), "a stopped container with a free port is fine"
        with HostListener(engine, "0.0.0.0", 7301) as listener:
            result = conflicts(engine)
            with pytest.raises(EngineError, match="address already in use"):
                engine.docker("start", name)
        finding = result.one("port-already-allocated", container=name)
        assert finding["severity"] == "error" and result.returncode == 1
        assert pids(finding) == {listener.pid}
        assert "(exited)" in finding["title"] and finding["port"] == 7301
        engine.docker("start", name)
        assert wait_for(lambda: engine.inspect(name)[0]["State"]["Running"], timeout=20)
    finally:
        remove_containers(engine, name)
