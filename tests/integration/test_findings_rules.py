"""Findings about rules, made for real in each of the four set-ups: shadowed-rule, stale-rule (a DNAT into the
bridge with no container, a removed container's rule put back, a docker-proxy left for a removed container),
two-backends and dead-jump. Where the kernel can show it, the test shows the finding is true.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import psutil
import pytest

from tests.integration.test_findings_harness import (
    chain_rules,
    conflicts,
    container_ip,
    module_containers,
    pids,
    remove_containers,
    rule,
    rule_texts,
    run_fix,
    serves,
    web_command,
)
from tests.sandbox.client import Client
from tests.sandbox.engine import BUSYBOX, IMAGE, Engine, EngineError, wait_for

pytestmark = pytest.mark.integration

WEB, DECOY = "rules-web", "rules-decoy"


@pytest.fixture(scope="module")
def ips(engine: Engine) -> Iterator[dict[str, str]]:
    """rules-web on 8080 and rules-decoy on 8081 (published, so FORWARD lets traffic reach it)."""
    runs = {WEB: ["-p", "8080:80", *web_command(WEB)], DECOY: ["-p", "8081:80", *web_command(DECOY)]}
    with module_containers(engine, runs) as addresses:
        yield addresses


def _docker_rule(engine: Engine, port: int, target: str) -> tuple[int, str]:
    """(position, text) of Docker's DNAT for `port` in the nat DOCKER chain."""
    for position, text in enumerate(chain_rules(engine, "nat", "DOCKER"), start=1):
        if f"--dport {port} " in text and f"--to-destination {target}" in text:
            return position, text
    raise AssertionError(f"no DOCKER DNAT for {port} -> {target}")


# --------------------------------------------------------------------------- shadowed-rule


def test_a_dnat_appended_after_dockers_jump(engine: Engine, ips: dict[str, str], client: Client) -> None:
    """The most common "why does my rule not work?": a DNAT appended to PREROUTING after Docker's jump.

    DOCKER's DNAT takes tcp/8080 from every interface but docker0 first, so the appended rule only sees
    what DOCKER returns: traffic from docker0. `list` (live and from a dump) shows it reached only from
    docker0, `conflicts` names Docker's DNAT as the winner, and real packets agree: the client reaches
    rules-web, while rules-web itself, on docker0, reaches the appended rule's target (a server in the
    client namespace, so that replies go back through the host's conntrack).
    """
    far = f"{client.client_ip}:{FAR_PORT}"
    appended = ("-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", far)
    gateway = engine.inspect(WEB)[0]["NetworkSettings"]["Gateway"]
    with far_server(client), rule(engine, "nat", "PREROUTING", *appended):
        live = json.loads(engine.run_portscope("list", "--json").stdout)
        dump = engine.iptables_save()
        result = conflicts(engine)
        from_outside = client.tcp_get(client.engine_ip, 8080, timeout=3)
        request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gateway} 8080"
        inside = engine.docker("exec", WEB, "sh", "-c", request, check=False)
    with tempfile.NamedTemporaryFile("w", suffix=".save") as f:
        f.write(dump)
        f.flush()
        offline = json.loads(engine.run_portscope("list", "--json", "--rules", f.name).stdout)
    # Docker 20.10 returns docker0's traffic from DOCKER when its userland proxy is on (the proxy serves
    # it); with the proxy off its DNAT takes docker0's traffic too, and the appended rule is dead.
    returns_docker0 = "-A DOCKER -i docker0 -j RETURN" in chain_rules(engine, "nat", "DOCKER")
    position, _ = _docker_rule(engine, 8080, f"{ips[WEB]}:80")
    for doc in (live, offline):
        manual = [b for b in doc["bindings"] if b["target_ip"] == client.client_ip and b["host_port"] == 8080]
        docker = [b for b in doc["bindings"] if b["target_ip"] == ips[WEB] and b["host_port"] == 8080 and b["reach"]]
        assert docker and all("only from docker0" not in b["reach"]["summary"] for b in docker)
        if returns_docker0:
            assert len(manual) == 1, manual
            assert manual[0]["reach"]["restricted"] and manual[0]["reach"]["summary"] == "only from docker0"
        else:
            assert manual == []
            dead = [u for u in doc["not_bindings"] if u["rule"]["text"].endswith(f"--to-destination {far}")]
            assert [u["kind"] for u in dead] == ["shadowed"] and f"DOCKER #{position}" in dead[0]["reason"]
    finding = result.one("shadowed-rule", port=8080)
    assert f"DOCKER #{position}" in finding["explanation"]
    assert ("only from docker0" if returns_docker0 else "no packet to this host reaches it") in finding["explanation"]
    assert "insert it before" in finding["fix"] and "-D PREROUTING" in finding["fix"]
    assert serves(from_outside, WEB), f"Docker's DNAT comes first: {from_outside!r}"
    if returns_docker0:
        assert serves(inside.stdout, FAR), f"docker0 traffic is returned to PREROUTING: {inside.stdout!r}"
    else:
        assert serves(inside.stdout, WEB), f"Docker's DNAT takes docker0 traffic too: {inside.stdout!r}"


FAR, FAR_PORT = "rules-far", 18080


@contextlib.contextmanager
def far_server(client: Client) -> Iterator[None]:
    """busybox httpd in the client namespace serving `hello from rules-far` on FAR_PORT."""
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "index.html"), "w", encoding="utf-8") as f:
            f.write(f"hello from {FAR}\n")
        server = subprocess.Popen(client.ns.argv([BUSYBOX, "httpd", "-f", "-p", str(FAR_PORT), "-h", root]))
        try:
            wait_for(lambda: client.tcp_get(client.client_ip, FAR_PORT, timeout=1), timeout=10)
            yield
        finally:
            server.terminate()
            server.wait(timeout=10)


def test_shadowed_rule_in_prerouting(engine: Engine, ips: dict[str, str], client: Client) -> None:
    """A hand DNAT for 8080 first in PREROUTING wins over Docker's: the finding names both, and clients really
    reach the decoy instead of rules-web."""
    assert serves(wait_for(lambda: client.tcp_get(client.engine_ip, 8080, timeout=2), timeout=20), WEB)
    hand = ("-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", f"{ips[DECOY]}:80")
    with rule(engine, "nat", "PREROUTING", *hand, insert=1):
        result = conflicts(engine)
        answer = client.tcp_get(client.engine_ip, 8080, timeout=3)
    finding = result.one("shadowed-rule", port=8080)
    assert finding["severity"] == "warning"
    assert finding["protocol"] == "tcp"
    winner, *_, dead = finding["evidence"]["rules"]
    assert (winner["chain"], winner["position"], winner["table"]) == ("PREROUTING", 1, "nat")
    assert f"--to-destination {ips[DECOY]}:80" in winner["text"]
    position, text = _docker_rule(engine, 8080, f"{ips[WEB]}:80")
    assert (dead["chain"], dead["position"], dead["text"]) == ("DOCKER", position, text)
    assert f"-D DOCKER {position}" in finding["fix"]
    assert ips[DECOY] in finding["explanation"] and ips[WEB] in finding["explanation"]
    assert result.kinds() == {"shadowed-rule"}, result.summary()
    assert result.returncode == 0
    assert serves(answer, DECOY), f"the earlier rule should win: {answer!r}"
    assert serves(wait_for(lambda: client.tcp_get(client.engine_ip, 8080, timeout=2), timeout=20), WEB)


def test_shadowed_rule_in_docker_chain(engine: Engine, ips: dict[str, str]) -> None:
    """`iptables -t nat -I DOCKER 1 … --dport 8080 -j DNAT --to-destination 10.99.0.9:80`: Docker's rule is dead,
    and the hand rule, in Docker's chain, targets no container (stale-rule, error)."""
    hand = ("-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.99.0.9:80")
    with rule(engine, "nat", "DOCKER", *hand, insert=1):
        result = conflicts(engine)
        position, text = _docker_rule(engine, 8080, f"{ips[WEB]}:80")
    finding = result.one("shadowed-rule", port=8080)
    rules = finding["evidence"]["rules"]
    winners = [r for r in rules if r["chain"] == "DOCKER" and r["position"] == 1]
    assert winners and "10.99.0.9:80" in winners[0]["text"]
    assert (rules[-1]["chain"], rules[-1]["position"], rules[-1]["text"]) == ("DOCKER", position, text)
    stale = result.one("stale-rule", port=8080)
    assert stale["severity"] == "error" and "10.99.0.9" in stale["title"]
    assert "--to-destination 10.99.0.9:80" in rule_texts(stale)[-1]
    assert result.returncode == 1


# --------------------------------------------------------------------------- stale-rule


def test_stale_rule_into_the_bridge(engine: Engine, ips: dict[str, str]) -> None:
    """A hand DNAT to an unused address of docker0's subnet: stale-rule, error; its fix removes it."""
    (bridge,) = engine.inspect("bridge")
    subnet = ipaddress.ip_network(bridge["IPAM"]["Config"][0]["Subnet"])
    nowhere = str(subnet.network_address + 250)
    assert nowhere not in ips.values()
    hand = ("-p", "tcp", "--dport", "7401", "-j", "DNAT", "--to-destination", f"{nowhere}:80")
    with rule(engine, "nat", "PREROUTING", *hand):
        result = conflicts(engine)
        finding = result.one("stale-rule", port=7401)
        assert finding["severity"] == "error"
        assert result.returncode == 1
        assert finding["container"] is None
        assert nowhere in finding["title"]
        dnat = finding["evidence"]["rules"][-1]
        assert dnat["chain"] == "PREROUTING" and f"--to-destination {nowhere}:80" in dnat["text"]
        assert f"-D PREROUTING {dnat['position']}" in finding["fix"]
        run_fix(engine, finding["fix"])
        assert not [line for line in chain_rules(engine, "nat", "PREROUTING") if nowhere in line]
        assert not conflicts(engine).of("stale-rule")


def test_stale_rule_of_a_removed_container(engine: Engine, ips: dict[str, str]) -> None:
    """Docker's own DNAT, put back by hand after `docker rm -f`: it targets no running container."""
    name = "rules-gone"
    engine.run_container(name, "-p", "7402:80", IMAGE, "sleep", "3600")
    try:
        gone_ip = container_ip(engine, name)
        _, text = _docker_rule(engine, 7402, f"{gone_ip}:80")
        assert not conflicts(engine).of("stale-rule")
    finally:
        remove_containers(engine, name)
    spec = shlex.split(text)[2:]  # after "-A DOCKER"
    with rule(engine, "nat", "DOCKER", *spec):
        result = conflicts(engine)
    finding = result.one("stale-rule", port=7402)
    assert finding["severity"] == "error" and result.returncode == 1
    assert f"{gone_ip}:80" in finding["title"]
    dnat = finding["evidence"]["rules"][-1]
    assert (dnat["chain"], dnat["text"]) == ("DOCKER", text)
    assert finding["bindings"] == [f"ipv4/tcp/0.0.0.0:7402->{gone_ip}:80"]


def _proxy_of(engine: Engine, port: int) -> list[str] | None:
    """The arguments of a docker-proxy for 0.0.0.0:port running in the engine's namespace, or None."""
    inode = engine.ns.inode()
    for proc in psutil.process_iter(["name", "cmdline"]):
        argv = proc.info["cmdline"] or []
        if proc.info["name"] != "docker-proxy" or "-host-port" not in argv or "0.0.0.0" not in argv:
            continue
        with contextlib.suppress(OSError):
            if argv[argv.index("-host-port") + 1] == str(port) and os.stat(f"/proc/{proc.pid}/ns/net").st_ino == inode:
                return argv[1:]
    return None


@contextlib.contextmanager
def _hand_proxy(engine: Engine, args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """docker-proxy started by hand in the namespace with `args` (fd 3 is its ready pipe, as dockerd gives it)."""
    binary = shutil.which("docker-proxy")
    assert binary is not None
    argv = engine.ns.argv(["sh", "-c", 'exec "$0" "$@" 3>&1', binary, *args])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "0", "docker-proxy did not start"
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_docker_proxy_left_for_a_removed_container(engine: Engine, ips: dict[str, str]) -> None:
    """A docker-proxy whose container is gone: stale-rule (warning) naming its pid; it really holds the port (a
    new container cannot publish it) until the fix kills it.

    dockerd 20.10 never leaves one behind by itself (docker-proxy dies with dockerd, Pdeathsig, and is stopped
    with its container), so the proxy is restarted by hand with the very arguments Docker gave it.
    """
    name, blocked = "rules-orphan", "rules-blocked"
    engine.run_container(name, "-p", "7403:80", IMAGE, "sleep", "3600")
    try:
        orphan_ip = container_ip(engine, name)
        expected = ["-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "7403"]
        expected += ["-container-ip", orphan_ip, "-container-port", "80"]
        docker_args = _proxy_of(engine, 7403)
        if engine.setup.userland_proxy:
            assert docker_args == expected, docker_args
        else:
            assert docker_args is None, "with the proxy off Docker runs no docker-proxy"
    finally:
        remove_containers(engine, name)
    assert _proxy_of(engine, 7403) is None
    with _hand_proxy(engine, expected) as proxy:
        result = conflicts(engine)
        finding = result.one("stale-rule", port=7403)
        assert finding["severity"] == "warning"
        assert pids(finding) == {proxy.pid}
        assert [p["name"] for p in finding["evidence"]["processes"]] == ["docker-proxy"]
        assert orphan_ip in finding["explanation"]
        assert finding["fix"].startswith(f"kill {proxy.pid}")
        try:
            with pytest.raises(EngineError, match="address already in use"):
                engine.run_container(blocked, "-p", "7403:80", IMAGE, "sleep", "3600")
            subprocess.run(shlex.split(finding["fix"].split("#", 1)[0]), check=True)  # the fix: kill PID
            proxy.wait(timeout=10)
            engine.docker("start", blocked)
            assert engine.inspect(blocked)[0]["State"]["Running"] is True
        finally:
            remove_containers(engine, blocked)


# --------------------------------------------------------------------------- two-backends, dead-jump


def test_two_backends(engine: Engine, ips: dict[str, str]) -> None:
    """One filter rule in the other iptables flavour: two-backends (warning), with that rule as evidence."""
    other = "iptables-legacy" if engine.setup.backend == "nft" else "iptables-nft"
    spec = ("-s", "192.0.2.99", "-j", "DROP")
    with rule(engine, "filter", "INPUT", *spec, tool=other):
        result = conflicts(engine)
    finding = result.one("two-backends")
    assert finding["severity"] == "warning"
    assert result.returncode == 0
    (evidence,) = [r for r in finding["evidence"]["rules"] if "192.0.2.99" in r["text"]]
    assert evidence["backend"] == other
    assert (evidence["table"], evidence["chain"], evidence["text"]) == (
        "filter",
        "INPUT",
        "-A INPUT -s 192.0.2.99/32 -j DROP",
    )
    odd_side = "iptables-legacy (1)" if other == "iptables-legacy" else "nf_tables (1)"
    assert odd_side in finding["title"], finding["title"]
    assert not conflicts(engine).of("two-backends"), "the other flavour's empty tables alone are not a finding"


def test_dead_jump_to_an_empty_per_item_chain(engine: Engine, ips: dict[str, str]) -> None:
    """A jump to an empty CNI-DN-… chain (what a half-cleaned CNI portmap leaves): dead-jump, and its fix works."""
    chain = "CNI-DN-0123456789abcdef0123"
    jump = ("-p", "tcp", "--dport", "7777", "-j", chain)
    engine.iptables("-t", "nat", "-N", chain)
    try:
        with rule(engine, "nat", "PREROUTING", *jump):
            result = conflicts(engine)
            finding = result.one("dead-jump")
            assert finding["severity"] == "warning"
            (evidence,) = finding["evidence"]["rules"]
            assert evidence["chain"] == "PREROUTING" and evidence["text"].endswith(f"--dport 7777 -j {chain}")
            assert chain in finding["title"] and "is empty" in finding["title"]
            assert f"-D PREROUTING {evidence['position']}" in finding["fix"]
            run_fix(engine, finding["fix"])
            assert not conflicts(engine).of("dead-jump")
    finally:
        engine.iptables("-t", "nat", "-X", chain, check=False)
