"""Changing another host's rules over real SSH (issue 16): `portscope publish|unpublish|block|unblock --host DEST`
from the fleet's client namespace, with real packets from that namespace (tests/sandbox/ssh_hosts.py):

- h1: no engine, portscope NOT installed (its PATH lacks this checkout's venv): reading works, changing is refused
  in one line;
- h2: a sandboxed dockerd on iptables-nft (userland proxy on), portscope installed; `web` (busybox httpd) runs
  without -p, `docker-web` with Docker's own `-p 18080:80`;
- h4: an address in the blackholed range, where no host answers.

The rules are read with the real tools in h2's namespace (iptables-save, `nft -s list ruleset`). Every portscope
run has stdin closed and a timeout: nothing may prompt. One engine host only, to spare the CPU.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import container_ip, normalized, ours, run_web
from tests.sandbox import engine as engine_sandbox
from tests.sandbox import ssh_hosts
from tests.sandbox.client import tcp_get
from tests.sandbox.engine import Engine, Setup, ensure_image, wait_for
from tests.sandbox.ssh_hosts import Fleet, FleetHost, HostSpec, ssh_fleet

pytestmark = pytest.mark.integration

WEB, DOCKER_WEB = "web", "docker-web"
NO_PORTSCOPE, ENGINE_HOST, UNREACHABLE = "h1", "h2", "h4"
PORT = 19090
DOCKER_PORT = 18080


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    need_root_tools(*engine_sandbox.TOOLS, *ssh_hosts.TOOLS, "nft")
    specs = [HostSpec(NO_PORTSCOPE, portscope=False), HostSpec(ENGINE_HOST, Setup("nft", True))]
    with ssh_fleet(specs, unreachable=(UNREACHABLE,)) as fleet:
        engine = h2_engine(fleet)
        ensure_image(engine)
        run_web(engine, WEB)
        run_web(engine, DOCKER_WEB, "-p", f"{DOCKER_PORT}:80")
        yield fleet


def h2_engine(fleet: Fleet) -> Engine:
    engine = fleet.hosts[ENGINE_HOST].engine
    assert engine is not None
    return engine


def rules(host: FleetHost) -> tuple[str, str, str]:
    """h2's rules as its own tools print them: iptables-save of each family (no counters) and the nft ruleset."""
    engine = host.engine
    assert engine is not None
    ruleset = host.ns.run(["nft", "-s", "list", "ruleset"], timeout=60).stdout
    return normalized(engine.iptables_save(4)), normalized(engine.iptables_save(6)), ruleset


def get(fleet: Fleet, port: int) -> str | None:
    """An HTTP GET from the client namespace to h2's address."""
    return tcp_get(fleet.client_ns, fleet.hosts[ENGINE_HOST].address, port, timeout=2)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portscope: "), proc.stderr
    return lines[0]


def stored(host: FleetHost) -> list[dict]:
    proc = host.portscope("status", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["bindings"]


# --------------------------------------------------------------------------- publish and unpublish, real traffic


def test_publish_on_h2_carries_traffic_and_unpublish_stops_it(fleet: Fleet) -> None:
    h2 = fleet.hosts[ENGINE_HOST]
    assert get(fleet, PORT) is None, "the port answers before anything is published"

    before = rules(h2)
    preview = fleet.portscope("publish", "--host", ENGINE_HOST, "--dry-run", "--json", WEB, f"{PORT}:80")
    assert preview.returncode == 0, preview.stderr
    doc = json.loads(preview.stdout)
    assert rules(h2) == before, "a dry run changed h2's rules"
    assert stored(h2) == []
    web_ip = container_ip(h2_engine(fleet), WEB)
    assert (doc["host"], doc["action"], doc["dry_run"], doc["host_port"]) == (ENGINE_HOST, "publish", True, PORT)
    assert doc["removed"] == [] and any(f"--to-destination {web_ip}:80" in line for line in doc["added"])
    local = h2.portscope("publish", "--dry-run", "--json", WEB, f"{PORT}:80")  # h2's own preview, run there
    assert local.returncode == 0, local.stderr
    assert {k: v for k, v in doc.items() if k != "host"} == json.loads(local.stdout)

    done = fleet.portscope("publish", "--host", ENGINE_HOST, WEB, f"{PORT}:80", "--reason", "fleet test")
    assert done.returncode == 0, done.stderr
    assert f"0.0.0.0:{PORT}/tcp" in done.stdout and web_ip in done.stdout and done.stdout.startswith("published ")
    answer = wait_for(lambda: get(fleet, PORT), timeout=20)
    assert answer is not None and f"hello from {WEB}" in answer, "the client does not reach the published port"
    (binding,) = stored(h2)
    assert (binding["host_port"], binding["container_name"], binding["why"]) == (PORT, WEB, "fleet test")

    # the options before the command, JSON out
    gone = fleet.portscope("--host", ENGINE_HOST, "unpublish", "--json", str(PORT))
    assert gone.returncode == 0, gone.stderr
    doc = json.loads(gone.stdout)
    expected = (ENGINE_HOST, "unpublish", False, binding["id"])
    assert (doc["host"], doc["action"], doc["dry_run"], doc["binding"]) == expected
    assert doc["removed"] and not doc["added"]
    assert wait_for(lambda: get(fleet, PORT) is None, timeout=20), "still reachable after unpublish"
    assert stored(h2) == []
    assert ours(h2_engine(fleet).iptables_save(4)) == []


def test_block_and_unblock_a_docker_port_on_h2(fleet: Fleet) -> None:
    h2 = fleet.hosts[ENGINE_HOST]
    assert wait_for(lambda: get(fleet, DOCKER_PORT), timeout=20), "Docker's -p port does not answer"
    blocked = fleet.portscope("block", "--host", ENGINE_HOST, str(DOCKER_PORT), "--reason", "maintenance")
    assert blocked.returncode == 0, blocked.stderr
    assert blocked.stdout.startswith("blocked ")
    assert wait_for(lambda: get(fleet, DOCKER_PORT) is None, timeout=20), "the blocked port still answers"
    (block,) = stored(h2)
    assert (block["kind"], block["host_port"]) == ("block", DOCKER_PORT)
    unblocked = fleet.portscope("unblock", "--host", ENGINE_HOST, "--json", block["id"])
    assert unblocked.returncode == 0, unblocked.stderr
    assert json.loads(unblocked.stdout)["action"] == "unblock"
    assert wait_for(lambda: get(fleet, DOCKER_PORT), timeout=20), "the port does not answer after unblock"
    assert stored(h2) == []


# --------------------------------------------------------------------------- refusals, one line each


def test_the_remote_error_and_exit_status_pass_through(fleet: Fleet) -> None:
    proc = fleet.portscope("unpublish", "--host", ENGINE_HOST, "19999")
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_error_line(proc) == "portscope: h2: no portscope binding 19999/tcp: see `portscope status`"


def test_bad_input_is_refused_before_any_connection(fleet: Fleet) -> None:
    # the host cannot be reached: an input error (exit 2, naming the spec) shows nothing was tried
    proc = fleet.portscope("publish", "--host", UNREACHABLE, WEB, "0:80")
    assert proc.returncode == 2 and "host port" in one_error_line(proc)
    proc = fleet.portscope("block", "--host", UNREACHABLE, "ps-1a2b3c4d")
    assert proc.returncode == 2 and "unpublish" in one_error_line(proc)
    proc = fleet.portscope("publish", "--host", ENGINE_HOST, "--host", UNREACHABLE, WEB, f"{PORT}:80")
    assert proc.returncode == 2 and "one host at a time" in one_error_line(proc)


def test_an_unreachable_host_is_one_line(fleet: Fleet) -> None:
    proc = fleet.portscope("publish", "--host", UNREACHABLE, WEB, f"{PORT}:80", "--timeout", "30")
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"{UNREACHABLE}: cannot connect" in one_error_line(proc)


def test_a_host_without_portscope_is_one_line_and_can_still_be_read(fleet: Fleet) -> None:
    proc = fleet.portscope("publish", "--host", NO_PORTSCOPE, WEB, f"{PORT}:80")
    assert proc.returncode == 1 and proc.stdout == ""
    line = one_error_line(proc)
    assert f"{NO_PORTSCOPE}: portscope is not installed there" in line and "reading needs nothing" in line
    read = fleet.portscope("list", "--json", "--host", NO_PORTSCOPE)
    assert read.returncode == 0, read.stderr
    (entry,) = json.loads(read.stdout)["fleet"]
    assert entry["reachable"] is True and entry["error"] is None
