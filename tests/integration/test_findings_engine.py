"""Findings that compare what Docker reports with what the kernel does, made for real in each of the four
set-ups: missing-rule (Docker's DNAT rules flushed) and family-mismatch (IPv4-only publishing on a host
with a global IPv6 address).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator

import pytest

from tests.integration.test_findings_harness import chain_rules, conflicts, module_containers, serves, web_command
from tests.sandbox.client import CLIENT_IF, ENGINE_IF, Client
from tests.sandbox.engine import IMAGE, Engine, wait_for

pytestmark = pytest.mark.integration

WEB, DNS = "eng-web", "eng-dns"
GLOBAL_ENGINE, GLOBAL_CLIENT = "2001:db8::1", "2001:db8::2"  # documentation prefix: global scope for the kernel


@pytest.fixture(scope="module")
def ips(engine: Engine) -> Iterator[dict[str, str]]:
    runs = {WEB: ["-p", "8080:80", *web_command(WEB)], DNS: ["-p", "5353:53/udp", IMAGE, "sleep", "3600"]}
    with module_containers(engine, runs) as addresses:
        yield addresses


def test_missing_rule_after_the_docker_chain_is_flushed(engine: Engine, ips: dict[str, str], client: Client) -> None:
    """`iptables -t nat -F DOCKER` (what a firewall reload does): missing-rule for each published IPv4 port.
    With the proxy on docker-proxy still carries them (warning, and the client is still served); with it off
    nothing does (error, and the client gets no answer)."""
    saved = chain_rules(engine, "nat", "DOCKER")
    assert any(f"{ips[WEB]}:80" in line for line in saved)
    engine.iptables("-t", "nat", "-F", "DOCKER")
    try:
        result = conflicts(engine)
        answer = client.tcp_get(client.engine_ip, 8080, timeout=3)
    finally:
        for line in saved:
            engine.iptables("-t", "nat", *shlex.split(line))
    proxy = engine.setup.userland_proxy
    severity = "warning" if proxy else "error"
    missing = result.of("missing-rule")
    assert {(f["container"], f["port"], f["protocol"]) for f in missing} == {(WEB, 8080, "tcp"), (DNS, 5353, "udp")}
    for finding in missing:
        assert finding["severity"] == severity, finding
        assert "0.0.0.0:" in finding["title"], "an IPv6 binding is docker-proxy's by design, not a missing rule"
        assert finding["fix"].startswith(f"docker restart {finding['container']}")
    assert result.kinds() == {"missing-rule"}, result.summary()
    assert result.returncode == (0 if proxy else 1)
    if proxy:
        assert serves(answer, WEB), answer
    else:
        assert answer is None, answer
    assert serves(wait_for(lambda: client.tcp_get(client.engine_ip, 8080, timeout=2), timeout=20), WEB)


def _seen_addresses(engine: Engine) -> set[str]:
    """The interface addresses portscope itself reads (its capture's host.networks)."""
    proc = engine.run_portscope("capture", "-o", "-")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {cidr.split("/")[0] for _, cidr in json.loads(proc.stdout)["host"]["networks"]}


def test_family_mismatch_needs_a_global_ipv6_address(engine: Engine, ips: dict[str, str], client: Client) -> None:
    """The harness's ULA (fd00:203::1) is no reason for a finding. With a global address (2001:db8::1) on the
    link, the proxy-less set-ups publish IPv4 only — family-mismatch, info, and IPv6 clients really get nothing —
    while with the proxy on both families answer and there is no finding."""
    assert not conflicts(engine).of("family-mismatch")
    for ns, ifname, address in ((engine.ns, ENGINE_IF, GLOBAL_ENGINE), (client.ns, CLIENT_IF, GLOBAL_CLIENT)):
        ns.run(["ip", "addr", "add", f"{address}/64", "dev", ifname, "nodad"])
    try:
        result = conflicts(engine)
        answer = client.tcp_get(GLOBAL_ENGINE, 8080, timeout=3)
        seen = _seen_addresses(engine)
    finally:
        for ns, ifname, address in ((engine.ns, ENGINE_IF, GLOBAL_ENGINE), (client.ns, CLIENT_IF, GLOBAL_CLIENT)):
            ns.run(["ip", "addr", "del", f"{address}/64", "dev", ifname], check=False)
    if engine.setup.userland_proxy:
        assert serves(answer, WEB), answer
        assert not result.of("family-mismatch"), result.summary()
        return
    assert answer is None, answer
    assert GLOBAL_ENGINE in seen, f"portscope does not see {GLOBAL_ENGINE} (core/host.py read_networks): {sorted(seen)}"
    found = {(f["container"], f["protocol"], f["severity"]) for f in result.of("family-mismatch")}
    assert found == {(WEB, "tcp", "info"), (DNS, "udp", "info")}, result.summary()
    web = result.one("family-mismatch", container=WEB)
    assert "IPv4 only" in web["title"] and GLOBAL_ENGINE in web["title"]
    assert web["bindings"] == [f"ipv4/tcp/0.0.0.0:8080->{ips[WEB]}:80"] and web["port"] == 8080
    assert result.returncode == 0
