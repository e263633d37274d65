"""Findings about the host's own protections, made for real in each of the four set-ups: exposed (INPUT drops,
Docker's DNAT forwards anyway) and ephemeral-overlap (a chosen host port inside ip_local_port_range).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_findings_harness import (
    HostListener,
    conflicts,
    module_containers,
    rule,
    serves,
    set_sysctl,
    web_command,
)
from tests.sandbox.client import Client, tcp_talk
from tests.sandbox.engine import IMAGE, Engine

pytestmark = pytest.mark.integration

WEB, FIXED, AUTO, BLANK = "host-web", "host-fixed", "host-auto", "host-blank"
RESERVED = "net.ipv4.ip_local_reserved_ports"


@pytest.fixture(scope="module")
def ips(engine: Engine) -> Iterator[dict[str, str]]:
    """-p 8080:80, -p 40000:80 (inside the ephemeral range), -P --expose 80 and -p 80 (engine-chosen ports)."""
    runs = {
        WEB: ["-p", "8080:80", *web_command(WEB)],
        FIXED: ["-p", "40000:80", IMAGE, "sleep", "3600"],
        AUTO: ["-P", "--expose", "80", IMAGE, "sleep", "3600"],
        BLANK: ["-p", "80", IMAGE, "sleep", "3600"],
    }
    with module_containers(engine, runs) as addresses:
        yield addresses


def _host_port(engine: Engine, name: str) -> int:
    (obj,) = engine.inspect(name)
    return int(obj["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])


@pytest.fixture
def input_drop(engine: Engine) -> Iterator[None]:
    """filter INPUT as a typical host firewall: loopback and ESTABLISHED,RELATED accepted, policy DROP."""
    established = ("-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
    with rule(engine, "filter", "INPUT", "-i", "lo", "-j", "ACCEPT"), rule(engine, "filter", "INPUT", *established):
        engine.iptables("-P", "INPUT", "DROP")
        try:
            yield
        finally:
            engine.iptables("-P", "INPUT", "ACCEPT")


def test_exposed_although_input_drops(engine: Engine, ips: dict[str, str], client: Client, input_drop: None) -> None:
    """With INPUT's policy DROP a host service on 7200 is unreachable, yet 8080 still serves the client: exposed
    (warning) for every all-address IPv4 DNAT binding, with Docker's DNAT as evidence."""
    with HostListener(engine, "0.0.0.0", 7200) as listener:
        assert tcp_talk(engine.ns, "127.0.0.1", 7200, timeout=3) == listener.banner, "lo is not filtered"
        assert tcp_talk(client.ns, client.engine_ip, 7200, timeout=3) is None, "INPUT DROP should stop the client"
        result = conflicts(engine)
        answer = client.tcp_get(client.engine_ip, 8080, timeout=3)
    assert serves(answer, WEB), f"DNAT bypasses INPUT, the client should be served: {answer!r}"
    exposed = result.of("exposed")
    ports = {_host_port(engine, name) for name in (WEB, FIXED, AUTO, BLANK)}
    assert {f["port"] for f in exposed} == ports, result.summary()
    assert all(f["severity"] == "warning" and f["protocol"] == "tcp" for f in exposed)
    web = result.one("exposed", port=8080)
    assert web["container"] == WEB
    assert web["bindings"] == [f"ipv4/tcp/0.0.0.0:8080->{ips[WEB]}:80"]
    assert f"--to-destination {ips[WEB]}:80" in web["evidence"]["rules"][-1]["text"]
    assert "policy" in web["explanation"]
    assert not result.of("exposed", port=7200), "a port with no DNAT is protected by INPUT"
    assert result.returncode == 0


def test_ephemeral_overlap_only_for_a_chosen_port(engine: Engine, ips: dict[str, str]) -> None:
    """-p 40000:80 lies in 32768-60999: ephemeral-overlap (warning). The engine-chosen ports of -P and -p 80 lie
    there too but are not the user's choice: no finding. Reserving 40000 ends it."""
    low, high = map(int, engine.ns.run(["sysctl", "-n", "net.ipv4.ip_local_port_range"]).stdout.split())
    auto = {_host_port(engine, AUTO), _host_port(engine, BLANK)}
    assert low <= 40000 <= high and all(low <= p <= high for p in auto), (low, high, auto)
    result = conflicts(engine)
    (finding,) = result.of("ephemeral-overlap")
    assert (finding["severity"], finding["port"], finding["container"]) == ("warning", 40000, FIXED)
    assert f"{low}-{high}" in finding["title"]
    assert finding["fix"].startswith(f"sysctl -w {RESERVED}=40000")
    assert result.returncode == 0
    old = set_sysctl(engine.ns.run, RESERVED, "40000")
    try:
        reserved = conflicts(engine)
    finally:
        set_sysctl(engine.ns.run, RESERVED, old)
    assert not reserved.of("ephemeral-overlap"), reserved.summary()
