"""Rootless Podman live in a namespace (issue 15): a user made for the test runs `podman run -p`, and
rootlessport, not a NAT rule, carries the port. portscope, as root, shows the holder and its user; the
container too when it reads that user's API socket, and says how to when it does not."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psutil
import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import serves
from tests.sandbox.client import Client, paired_client
from tests.sandbox.engine import wait_for
from tests.sandbox.podman import TOOLS, Podman, PodmanSetup, ensure_image, start_podman, stop_podman

WEB = "rlweb"
NO_ENGINE = "unix:///nonexistent/docker.sock"


@pytest.fixture(scope="module")
def pod() -> Iterator[Podman]:
    need_root_tools(*TOOLS, "useradd", "userdel", "setpriv", "newuidmap", "slirp4netns")
    podman = start_podman(PodmanSetup("nft"), rootless=True)
    try:
        ensure_image(podman)
        cmd = f"echo 'hello from {WEB}' > /www/index.html && exec httpd -f -p 80 -h /www"
        podman.run_container(WEB, "-p", "8080:80", "portscope-busybox:test", "sh", "-c", cmd)
        yield podman
    finally:
        notes = stop_podman(podman)
        assert podman.user is not None
        assert not [p for p in notes if "still exists" in p or "remain" in p], notes


@pytest.fixture(scope="module")
def client(pod: Podman) -> Iterator[Client]:
    with paired_client(pod.ns) as cli:
        yield cli


def list_json(pod: Podman, docker_host: str) -> dict:
    proc = pod.run_portscope("list", "--json", docker_host=docker_host)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_holder_and_its_user_without_the_users_socket(pod: Podman, client: Client) -> None:
    assert pod.user is not None
    assert serves(client, 8080, WEB)  # real packets, through rootlessport
    assert not pod.iptables("-t", "nat", "-S").stdout.strip().count("DNAT")  # no NAT rule at all
    doc = list_json(pod, NO_ENGINE)
    (b,) = doc["bindings"]
    assert (b["host_port"], b["protocol"], b["owner"], b["carriers"]) == (8080, "tcp", "podman", ["proxy"]), b
    assert b["container"] is None and b["evidence"]["rules"] == []
    assert [(p["name"], p["user"]) for p in b["evidence"]["processes"]] == [("rootlessport", pod.user.name)]
    socket = f"unix:///run/user/{pod.user.uid}/podman/podman.sock"
    assert any(pod.user.name in w and socket in w for w in doc["warnings"]), doc["warnings"]


def test_the_container_through_the_users_socket(pod: Podman, client: Client) -> None:
    assert pod.user is not None
    doc = list_json(pod, pod.docker_host)
    assert doc["engine"]["reachable"] and doc["engine"]["name"] == "Podman Engine", doc["engine"]
    (obj,) = pod.inspect(WEB)
    published = {
        (m["HostIp"] or "0.0.0.0", int(m["HostPort"]), key.split("/")[1], int(key.split("/")[0]))
        for key, maps in obj["NetworkSettings"]["Ports"].items()
        for m in maps or ()
    }
    got = {(b["host_ip"], b["host_port"], b["protocol"], b["container_port"]) for b in doc["bindings"]}
    assert got == published == {("0.0.0.0", 8080, "tcp", 80)}
    (b,) = doc["bindings"]
    assert b["container"]["name"] == WEB and b["reported_by_engine"] and b["carriers"] == ["proxy"], b
    assert [(p["name"], p["user"]) for p in b["evidence"]["processes"]] == [("rootlessport", pod.user.name)]
    assert doc["warnings"] == []
    proc = pod.run_portscope("conflicts", "--json")
    kinds = [f["kind"] for f in json.loads(proc.stdout)["findings"]]
    assert "missing-rule" not in kinds and "shadowed-listener" not in kinds, kinds
    assert wait_for(lambda: client.tcp_get(client.engine_ip, 8080, timeout=2), timeout=20)


def test_a_missing_finding_when_the_holder_goes(pod: Podman, client: Client) -> None:
    """Last in the module: it ends the container's rootlessport, so that nothing carries 8080 any more."""
    assert pod.user is not None
    (holder,) = [p for p in psutil.process_iter() if p.name() == "rootlessport" and p.uids().real == pod.user.uid]
    holder.kill()
    holder.wait(timeout=10)
    assert wait_for(lambda: client.tcp_get(client.engine_ip, 8080, timeout=1) is None, timeout=20)
    proc = pod.run_portscope("conflicts", "--json")
    missing = [f for f in json.loads(proc.stdout)["findings"] if f["kind"] == "missing-rule"]
    assert [(f["container"], f["port"], f["severity"]) for f in missing] == [(WEB, 8080, "error")], missing
    assert missing[0]["fix"].startswith(f"podman restart {WEB}")
