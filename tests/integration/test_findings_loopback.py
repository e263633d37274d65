"""Loopback findings proven with real packets, in each of the four set-ups.

loopback-reachable: Docker 20.10 publishes `-p 127.0.0.1:9000:80` with a PREROUTING DNAT and no raw-table
guard, so a neighbour that sends a TCP SYN to 127.0.0.1:9000 through the link gets the container's
SYN-ACK. The raw DROP from the finding's fix ends both the finding and the answer.

route-localnet: with route_localnet=1 on the link, a host service bound to 127.0.0.1 answers the
neighbour the same way; the finding needs such a service, and goes with the sysctl.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_findings_harness import (
    HostListener,
    conflicts,
    is_syn_ack,
    module_containers,
    pids,
    run_fix,
    set_sysctl,
    syn_probe,
    web_command,
)
from tests.sandbox.client import ENGINE_IF, Client
from tests.sandbox.engine import Engine

pytestmark = pytest.mark.integration

LOCAL = "lb-local"


@pytest.fixture(scope="module")
def local_ip(engine: Engine) -> Iterator[str]:
    with module_containers(engine, {LOCAL: ["-p", "127.0.0.1:9000:80", *web_command(LOCAL)]}) as ips:
        yield ips[LOCAL]


def test_loopback_publish_is_reachable_from_the_link(engine: Engine, local_ip: str, client: Client) -> None:
    """loopback-reachable (error) is true: the client's SYN to 127.0.0.1:9000 is answered. After the finding's
    fix (a raw PREROUTING DROP) the finding is gone, exit 0, and the SYN gets no answer."""
    result = conflicts(engine)
    finding = result.one("loopback-reachable", port=9000)
    assert finding["severity"] == "error" and result.returncode == 1
    assert finding["container"] == LOCAL
    assert finding["bindings"] == [f"ipv4/tcp/127.0.0.1:9000->{local_ip}:80"]
    dnat = finding["evidence"]["rules"][-1]
    assert dnat["chain"] == "DOCKER" and "-d 127.0.0.1/32" in dnat["text"] and f"{local_ip}:80" in dnat["text"]
    assert is_syn_ack(syn_probe(client, engine, "127.0.0.1", 9000)), "the neighbour's SYN should be answered"
    fix = finding["fix"]
    assert fix.startswith("iptables -t raw -I PREROUTING -d 127.0.0.1 ! -i lo -p tcp --dport 9000 -j DROP")
    try:
        run_fix(engine, fix)
        fixed = conflicts(engine)
        answer = syn_probe(client, engine, "127.0.0.1", 9000)
    finally:
        engine.iptables("-t", "raw", "-D", "PREROUTING", "-d", "127.0.0.1", "!", "-i", "lo", "-p", "tcp",
                        "--dport", "9000", "-j", "DROP", check=False)  # fmt: skip
    assert fixed.findings == [], fixed.summary()
    assert fixed.returncode == 0
    assert answer is None, f"the raw DROP should silence 127.0.0.1:9000, got flags {answer}"


def test_route_localnet_matters_with_a_loopback_service(engine: Engine, local_ip: str, client: Client) -> None:
    """route_localnet=1 on the link finds nothing until a host service listens on 127.0.0.1; then route-localnet
    (warning, naming the process) — and the client's SYN to 127.0.0.1:7100 really is answered. docker0 (=1 when
    the proxy is off) is info. The engine's own 127.0.0.1:9000 socket never counts."""
    sysctl = f"net.ipv4.conf.{ENGINE_IF}.route_localnet"
    docker0 = engine.ns.run(["sysctl", "-n", "net.ipv4.conf.docker0.route_localnet"]).stdout.strip()
    assert docker0 == ("0" if engine.setup.userland_proxy else "1")
    old = set_sysctl(engine.ns.run, sysctl, "1")
    try:
        quiet = conflicts(engine)
        with HostListener(engine, "127.0.0.1", 7100, banner="loopback-only") as listener:
            result = conflicts(engine)
            answered = syn_probe(client, engine, "127.0.0.1", 7100)
            set_sysctl(engine.ns.run, sysctl, "0")
            silenced = syn_probe(client, engine, "127.0.0.1", 7100)
            after = conflicts(engine)
    finally:
        set_sysctl(engine.ns.run, sysctl, old)
    assert not quiet.of("route-localnet"), quiet.summary()
    link = [f for f in result.of("route-localnet") if f"on {ENGINE_IF}:" in f["title"]]
    assert len(link) == 1, result.summary()
    assert link[0]["severity"] == "warning"
    assert pids(link[0]) == {listener.pid}
    assert link[0]["fix"] == f"sysctl -w {sysctl}=0"
    bridge = [f for f in result.of("route-localnet") if "on docker0:" in f["title"]]
    assert [f["severity"] for f in bridge] == ([] if engine.setup.userland_proxy else ["info"])
    assert is_syn_ack(answered), "route_localnet=1 should let the neighbour reach 127.0.0.1:7100"
    assert silenced is None, f"with route_localnet=0 127.0.0.1 is martian, got flags {silenced}"
    assert not [f for f in after.of("route-localnet") if ENGINE_IF in f["title"]], after.summary()
