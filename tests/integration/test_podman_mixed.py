"""Docker and rootful Podman on one host (one namespace), live (issue 15): each port with its engine, real
traffic, and a finding when both want one host port — whichever engine's socket portscope reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import run_web, serves
from tests.sandbox.client import Client, start_client, stop_client, tcp_get
from tests.sandbox.engine import TOOLS as DOCKER_TOOLS
from tests.sandbox.engine import Engine, Setup, client_ns_name, ensure_image, start_engine, stop_engine, wait_for
from tests.sandbox.podman import TOOLS, Podman, PodmanSetup, start_podman, stop_podman
from tests.sandbox.podman import ensure_image as ensure_podman_image

DWEB, PWEB, PLATE = "dweb", "pweb", "plate"


@dataclass
class Host:
    docker: Engine
    podman: Podman
    client: Client


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    """dockerd (iptables-nft, no userland proxy) and Podman in one namespace; Docker publishes 8080, Podman
    8082, and a Podman container that asks for 8080 too is created but cannot start."""
    need_root_tools(*DOCKER_TOOLS, *TOOLS)
    engine = start_engine(Setup("nft", userland_proxy=False))
    try:
        pod = start_podman(PodmanSetup("nft"), ns=engine.ns)
        try:
            ensure_image(engine)
            ensure_podman_image(pod)
            client = start_client(engine.ns, name=client_ns_name(engine.ns.name))
            try:
                run_web(engine, DWEB, "-p", "8080:80")
                run_web(pod, PWEB, "-p", "8082:80")  # type: ignore[arg-type]
                late = pod.podman("run", "-d", "--name", PLATE, "-p", "8080:80", "portscope-busybox:test", check=False)
                assert late.returncode != 0 and "address already in use" in late.stderr, late.stderr
                yield Host(engine, pod, client)
            finally:
                stop_client(client)
        finally:
            stop_podman(pod)
    finally:
        stop_engine(engine)


def read(host: Host, command: str, engine: Engine | Podman) -> dict:
    proc = host.podman.run_portscope(command, "--json", docker_host=engine.docker_host)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_each_port_with_its_engine_and_traffic_to_both(host: Host) -> None:
    assert serves(host.client, 8080, DWEB)
    # Podman's port answers on the host itself (OUTPUT, no forwarding)...
    local = wait_for(lambda: tcp_get(host.docker.ns, host.client.engine_ip, 8082, timeout=2), timeout=20)
    assert local is not None and f"hello from {PWEB}" in local
    # ...but not from a neighbour: Docker's filter FORWARD policy DROP, and netavark 1.4 accepts only
    # replies and its containers' own traffic, so a new forwarded connection to Podman's bridge is dropped.
    assert "-P FORWARD DROP" in host.docker.iptables("-S", "FORWARD").stdout
    assert host.client.tcp_get(host.client.engine_ip, 8082, timeout=2) is None
    for engine, named in ((host.docker, {8080: DWEB}), (host.podman, {8082: PWEB})):
        doc = read(host, "list", engine)
        got = {(b["host_port"], b["owner"], (b["container"] or {}).get("name")) for b in doc["bindings"]}
        assert got == {(8080, "docker", named.get(8080)), (8082, "podman", named.get(8082))}, got


def test_a_finding_when_both_want_one_host_port(host: Host) -> None:
    for engine in (host.docker, host.podman):  # neither read calls the other engine's rules stale
        kinds = [f["kind"] for f in read(host, "conflicts", engine)["findings"]]
        assert "stale-rule" not in kinds and "missing-rule" not in kinds, kinds
    findings = read(host, "conflicts", host.podman)["findings"]
    (taken,) = [f for f in findings if f["kind"] == "port-already-allocated"]
    assert (taken["container"], taken["port"], taken["severity"]) == (PLATE, 8080, "error"), taken
    assert [p["name"] for p in taken["evidence"]["processes"]] == ["dockerd"], taken
