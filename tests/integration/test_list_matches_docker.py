"""`portscope list` against a real Docker 20.10 engine, in each of the four set-ups.

Containers are published the usual ways; portscope, run inside the engine's namespace,
must list exactly the bindings `docker inspect` reports, each pointing at its container.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pytest

from tests.sandbox.client import Client, tcp_get, udp_ask
from tests.sandbox.engine import IMAGE, Engine, wait_for

pytestmark = pytest.mark.integration

#: (host_ip, host_port, protocol, container name, container_port)
BindingKey = tuple[str, int, str, str | None, int | None]

HOST_PYTHON = "/usr/bin/python3"
UDP_ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 53))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(65536)\n"
    "    s.sendto(b'pong:' + data, peer)\n"
)
MANUAL_RULE = ("-p", "tcp", "--dport", "2222", "-j", "DNAT", "--to-destination", "10.99.0.5:22")


@dataclass
class Published:
    """The containers of this module, inspected once they serve."""

    engine: Engine
    inspect: dict[str, dict]  # container name -> `docker inspect` object
    web_content: str
    udp_echo: bool  # the UDP container answers (needs the host's python3, mounted read-only)

    def ip(self, name: str, family: str = "ipv4") -> str:
        """The container's address on its (only) network; for ipv6 without one, its IPv4 address."""
        (net,) = self.inspect[name]["NetworkSettings"]["Networks"].values()
        if family == "ipv6" and net.get("GlobalIPv6Address"):
            return net["GlobalIPv6Address"]
        return net["IPAddress"]

    def expected(self) -> set[BindingKey]:
        """Every binding `docker inspect` reports in NetworkSettings.Ports."""
        keys: set[BindingKey] = set()
        for name, obj in self.inspect.items():
            for spec, entries in (obj["NetworkSettings"]["Ports"] or {}).items():
                port, proto = spec.split("/")
                for entry in entries or []:
                    keys.add((entry["HostIp"], int(entry["HostPort"]), proto, name, int(port)))
        return keys


@pytest.fixture(scope="module")
def published(engine: Engine) -> Iterator[Published]:
    """Run the six containers (five published ways and one without ports) and wait until they serve."""
    sid = engine.setup.id
    content = f"hello from ps-web in {sid}"
    udp_echo = os.access(HOST_PYTHON, os.X_OK)
    udp_cmd = ["-v", "/usr:/usr:ro", IMAGE, HOST_PYTHON, "-c", UDP_ECHO] if udp_echo else [IMAGE, "sleep", "3600"]
    web_cmd = f"echo '{content}' > /www/index.html && exec httpd -f -p 80 -h /www"
    runs = {
        "ps-web": ["-p", "8080:80", IMAGE, "sh", "-c", web_cmd],
        "ps-local": ["-p", "127.0.0.1:9000:80", IMAGE, "httpd", "-f", "-p", "80"],
        "ps-dns": ["-p", "5353:53/udp", *udp_cmd],
        "ps-expose": ["-P", "--expose", "80", IMAGE, "httpd", "-f", "-p", "80"],
        "ps-blank": ["-p", "80", IMAGE, "httpd", "-f", "-p", "80"],
        "ps-none": [IMAGE, "sleep", "3600"],
    }  # fmt: skip
    try:
        for name, args in runs.items():
            engine.run_container(name, *args)
        inspected = {obj["Name"].lstrip("/"): obj for obj in engine.inspect(*runs)}
        pub = Published(engine=engine, inspect=inspected, web_content=content, udp_echo=udp_echo)
        web_ip, dns_ip = pub.ip("ps-web"), pub.ip("ps-dns")
        assert wait_for(lambda: tcp_get(engine.ns, web_ip, 80, timeout=2), timeout=30), "ps-web httpd never answered"
        if udp_echo:
            assert wait_for(lambda: udp_ask(engine.ns, dns_ip, 53, "ready", timeout=1), timeout=30), "no UDP echo"
        yield pub
    finally:
        engine.docker("rm", "-f", *runs, check=False)
        engine.containers.clear()


def portscope_list(engine: Engine) -> dict:
    """`portscope list --json` run inside the engine's namespace, parsed."""
    proc = engine.run_portscope("list", "--json")
    assert proc.returncode == 0, f"portscope list --json exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "portscope.list/1"
    return doc


def key_of(binding: dict) -> BindingKey:
    container = binding["container"]
    return (
        binding["host_ip"],
        binding["host_port"],
        binding["protocol"],
        container["name"].lstrip("/") if container else None,
        binding["container_port"],
    )


def test_docker_publishes_as_set_up(engine: Engine, published: Published) -> None:
    """The harness is what it claims: Docker's rules are in the set-up's backend only, ports as requested."""
    nat = engine.iptables_save()
    other: Literal["nft", "legacy"] = "nft" if engine.setup.backend == "legacy" else "legacy"
    web_ip = published.ip("ps-web")
    assert f"-j DNAT --to-destination {web_ip}:80" in nat
    assert ":DOCKER" not in engine.iptables_save(backend=other)
    expected = published.expected()
    assert ("0.0.0.0", 8080, "tcp", "ps-web", 80) in expected
    assert ("127.0.0.1", 9000, "tcp", "ps-local", 80) in expected
    assert ("0.0.0.0", 5353, "udp", "ps-dns", 53) in expected
    assert not [k for k in expected if k[3] == "ps-none"]
    for name in ("ps-expose", "ps-blank"):
        ports = {k[1] for k in expected if k[3] == name}
        assert len(ports) == 1 and min(ports) >= 1024, f"{name} should get one ephemeral host port: {ports}"
    # Docker 20.10 adds a "::" twin of each all-address binding only when docker-proxy carries it.
    assert ("::" in {k[0] for k in expected}) == engine.setup.userland_proxy


def test_list_matches_docker_inspect(engine: Engine, published: Published) -> None:
    """Exactly the bindings docker inspect reports, no phantom and no miss, each aimed at its container."""
    doc = portscope_list(engine)
    bindings = doc["bindings"]
    actual = {key_of(b) for b in bindings}
    expected = published.expected()
    assert actual == expected, (
        f"missing: {sorted(expected - actual, key=str)}; phantom: {sorted(actual - expected, key=str)}"
    )
    assert len(bindings) == len(actual), "a binding is listed twice"
    for b in bindings:
        name = b["container"]["name"].lstrip("/")
        assert b["owner"] == "docker", b
        assert b["reported_by_engine"] is True, b
        assert b["family"] == ("ipv6" if ":" in b["host_ip"] else "ipv4"), b
        assert b["host_port_last"] in (None, b["host_port"]), b
        assert b["target_ip"] == published.ip(name, b["family"]), b
        assert b["target_port"] == b["container_port"], b
        cid = b["container"]["id"]
        assert len(cid) >= 12 and published.inspect[name]["Id"].startswith(cid), b


def test_list_names_carriers(engine: Engine, published: Published) -> None:
    """docker-proxy carries every binding iff it is on (dockerd's own placeholder sockets forward nothing);
    all-address IPv4 bindings are carried by a DNAT rule, IPv6 ones never (20.10 writes no ip6tables rules)."""
    doc = portscope_list(engine)
    assert doc["bindings"]
    for b in doc["bindings"]:
        carriers = set(b["carriers"])
        assert carriers <= {"dnat", "proxy"}, b
        assert ("proxy" in carriers) == engine.setup.userland_proxy, b
        if b["family"] == "ipv6":
            assert "dnat" not in carriers, b
        elif b["host_ip"] == "0.0.0.0":
            assert "dnat" in carriers, b


def test_manual_dnat_rule_is_listed(engine: Engine, published: Published) -> None:
    """A DNAT rule added by hand is a binding owned by "manual"."""
    engine.iptables("-t", "nat", "-A", "PREROUTING", *MANUAL_RULE)
    try:
        assert "--dport 2222 -j DNAT --to-destination 10.99.0.5:22" in engine.iptables_save()
        doc = portscope_list(engine)
    finally:
        engine.iptables("-t", "nat", "-D", "PREROUTING", *MANUAL_RULE)
    manual = [b for b in doc["bindings"] if b["host_port"] == 2222]
    assert len(manual) == 1, manual
    (b,) = manual
    assert b["owner"] == "manual"
    assert b["protocol"] == "tcp"
    assert (b["target_ip"], b["target_port"]) == ("10.99.0.5", 22)
    assert b["container"] is None
    assert "dnat" in b["carriers"]
    assert published.expected() <= {key_of(x) for x in doc["bindings"]}, "the Docker bindings are still all there"


def test_client_reaches_published_port(engine: Engine, published: Published, client: Client) -> None:
    """Real packets from another namespace reach `-p 8080:80` through 10.203.0.1:8080; 127.0.0.1:9000 stays local."""
    answer = wait_for(lambda: client.tcp_get(client.engine_ip, 8080, timeout=3), timeout=30)
    assert answer is not None, "no answer from 10.203.0.1:8080"
    assert answer.startswith("HTTP/1.") and " 200 " in answer.splitlines()[0], answer
    assert published.web_content in answer
    assert client.tcp_get(client.engine_ip, 9000, timeout=3) is None, "a 127.0.0.1-only binding answered the client"
    if published.udp_echo:
        reply = wait_for(lambda: client.udp_ask(client.engine_ip, 5353, "ping", timeout=2), timeout=20)
        assert reply == "pong:ping"


def test_client_over_ipv6_needs_the_proxy(engine: Engine, published: Published, client: Client) -> None:
    """Docker 20.10 without --ipv6: `[::]:8080` answers only when docker-proxy carries it."""
    if engine.setup.userland_proxy:
        answer = wait_for(lambda: client.tcp_get(client.engine_ip6, 8080, timeout=3), timeout=30)
        assert answer is not None and published.web_content in answer
        if published.udp_echo:
            reply = wait_for(lambda: client.udp_ask(client.engine_ip6, 5353, "ping6", timeout=2), timeout=20)
            assert reply == "pong:ping6"
    else:
        assert client.tcp_get(client.engine_ip6, 8080, timeout=3) is None
