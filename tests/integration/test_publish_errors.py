"""Every user error: a one-line message, the documented exit status, and the firewall exactly as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_publish_harness import Portscope, normalized, ours, remove_containers, run_web
from tests.sandbox.client import Client
from tests.sandbox.engine import IMAGE, Engine, wait_for

pytestmark = pytest.mark.integration

WEB, STOPPED, HOSTNET, DOCKER_WEB = "err-web", "err-stopped", "err-hostnet", "err-docker"
LISTENER = "import socket, time\ns = socket.socket()\ns.bind(('0.0.0.0', 28110))\ns.listen()\ntime.sleep(600)\n"


@pytest.fixture(scope="module")
def ps(engine: Engine, client: Client) -> Iterator[Portscope]:
    """Containers for every error case; `client` gives the host the address fd00:203::1."""
    ps = Portscope(engine)
    try:
        run_web(engine, WEB)
        run_web(engine, DOCKER_WEB, "-p", "28180:80")
        engine.run_container(STOPPED, IMAGE, "true")
        wait_for(lambda: engine.inspect(STOPPED)[0]["State"]["Status"] == "exited", timeout=30)
        engine.run_container(HOSTNET, "--network", "host", IMAGE, "sleep", "3600")
        yield ps
    finally:
        ps.clean_up()
        remove_containers(engine, WEB, STOPPED, HOSTNET, DOCKER_WEB)


def stored(ps: Portscope) -> str | None:
    path = Path(ps.state_dir) / "state.json"
    return path.read_text() if path.exists() else None


def rules(ps: Portscope) -> dict[int, str]:
    return {fam: normalized(ps.engine.iptables_save(fam)) for fam in (4, 6)}


BAD = [
    pytest.param(("publish", WEB, "0"), 2, "1-65535", id="port-0"),
    pytest.param(("publish", WEB, "65536"), 2, "1-65535", id="port-65536"),
    pytest.param(("publish", WEB, "abc"), 2, "not a port", id="port-abc"),
    pytest.param(("publish", WEB, "80-"), 2, "ranges", id="port-80-"),
    pytest.param(("publish", WEB, "28100:80/icmp"), 2, "protocol", id="protocol"),
    pytest.param(("publish", WEB, "[::]:28100:80"), 2, "only an IPv4 address", id="ipv6-host-ipv4-target"),
    pytest.param(("publish", WEB, "[fd00:203::1]:28100:80"), 2, "only an IPv4 address", id="ipv6-address"),
    pytest.param(("publish", "10.99.0.5", "[::]:28100:80"), 2, "IPv4", id="ipv6-host-plain-ipv4"),
    pytest.param(("publish", WEB, "10.99.99.99:28100:80"), 2, "not an address of this host", id="foreign-host-ip"),
    pytest.param(("publish", WEB, "[::1]:28100:80"), 2, "::1", id="ipv6-loopback"),
    pytest.param(("publish", "err-nosuch", "28100:80"), 2, "no container", id="unknown-container"),
    pytest.param(("publish", STOPPED, "28100:80"), 2, "exited", id="stopped-container"),
    pytest.param(("publish", HOSTNET, "28100:80"), 2, "--network host", id="host-network"),
    pytest.param(("publish", WEB, "28100:80", "--reason", "two\nlines"), 2, "--reason", id="reason-newline"),
    pytest.param(("publish", WEB, "28100:80", "--reason", 'say "hi"'), 2, "--reason", id="reason-quotes"),
    pytest.param(("publish", 'err"web', "28100:80"), 2, "not a container name", id="name-quote"),
    pytest.param(("publish", "err-web\n-j ACCEPT", "28100:80"), 2, "not a container name", id="name-newline"),
    pytest.param(("publish", WEB, "28180:80"), 2, "already published by docker", id="docker-port-taken"),
    pytest.param(("unpublish", "ps-00000000"), 2, "no portscope binding", id="unpublish-unknown"),
    pytest.param(("unpublish", "28180"), 2, "portscope block", id="unpublish-docker"),
    pytest.param(("unblock", "28180"), 2, "no portscope block", id="unblock-unknown"),
    pytest.param(("block", "28199"), 2, "nothing is published", id="block-nothing"),
]


@pytest.mark.parametrize(("args", "code", "needle"), BAD)
def test_bad_input_changes_nothing(ps: Portscope, args: tuple[str, ...], code: int, needle: str) -> None:
    before, state_before = rules(ps), stored(ps)
    proc = ps.run(*args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("portscope: "), proc.stderr
    assert needle in lines[0], lines[0]
    assert proc.stdout == ""
    assert rules(ps) == before, "the firewall changed"
    assert stored(ps) == state_before, "the state changed"


def test_unreachable_engine_exits_5(ps: Portscope) -> None:
    before = rules(ps)
    proc = ps.run("publish", WEB, "28100:80", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert proc.returncode == 5 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "engine" in proc.stderr
    assert rules(ps) == before


def test_a_listener_conflict_is_refused_unless_forced(ps: Portscope) -> None:
    listener = subprocess.Popen(ps.engine.ns.argv([sys.executable, "-c", LISTENER]))
    try:
        assert wait_for(lambda: "28110" in ps.engine.ns.run(["ss", "-Hltn", "sport = :28110"]).stdout, timeout=20), (
            "the listener did not start"
        )
        before = rules(ps)
        proc = ps.run("publish", WEB, "28110:80")
        assert proc.returncode == 2 and f"pid {listener.pid}" in proc.stderr and "--force" in proc.stderr
        assert rules(ps) == before
        forced = ps.run("publish", WEB, "28110:80", "--force")
        assert forced.returncode == 0 and "warning:" in forced.stderr, forced.stderr
        bid = ps.binding_id(forced.stdout)
        assert [line for line in ours(ps.save()) if bid in line]
        ps.ok("unpublish", bid)
    finally:
        listener.kill()
        listener.wait()


def test_status_json_is_empty_after_the_errors(ps: Portscope) -> None:
    doc = json.loads(ps.ok("status", "--json"))
    assert doc["schema"] == "portscope.status/1" and doc["bindings"] == [] and doc["drift"] == []
