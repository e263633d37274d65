"""A fleet read over real SSH (issue 16): `portscope list|conflicts --json --host ...` from a client namespace
against hosts that are namespaces running their own sshd (tests/sandbox/ssh_hosts.py):

- h1: a sandboxed dockerd on iptables-nft (userland proxy on) with a published container;
- h2: a sandboxed dockerd on iptables-legacy (userland proxy on) with a published container. Without the proxy,
  Docker 20.10's dockerd holds the published port itself, and a child it forks at that moment holds the socket
  too until it execs: a read that catches it names the child (as psutil would), so two reads a moment apart
  can differ — not what this test is about;
- h3: no engine, a native nftables DNAT of port 8080 and busybox httpd listening on 8080 (a finding);
- h4: an address in the blackholed range, where no host answers;
- h1-user: h1 again, logged into as a non-root user.

Each reachable host's part of the fleet answer, with the "host" key of its bindings and findings taken out,
must equal the host's own local answer read in its namespace (DOCKER_HOST and PORTSCOPE_STATE_DIR as its sshd
sets them); only `taken_at`, the time of the read, is dropped before comparing. Every portscope run has stdin
closed and a timeout: nothing may prompt.

The fleet has engines of its own and does not take the session's `engine` fixture, so these tests run once,
not once per engine set-up.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.sandbox import engine as engine_sandbox
from tests.sandbox import ssh_hosts
from tests.sandbox.as_user import run_cli_as
from tests.sandbox.engine import BUSYBOX, IMAGE, Setup, ensure_image, wait_for
from tests.sandbox.ssh_hosts import Fleet, FleetHost, HostSpec, ssh_fleet

pytestmark = pytest.mark.integration

ROOT_HOSTS = ("h1", "h2", "h3")
UNREACHABLE = "h4"
USER_HOST = "h1-user"
DESTINATIONS = ("h1", "h2", "h3", UNREACHABLE, USER_HOST)
VOLATILE = ("taken_at",)
H3_RULES = """
table ip fleet-test {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local tcp dport 8080 dnat to 10.99.0.2:80
    }
    chain output {
        type nat hook output priority -100; policy accept;
        ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 10.99.0.2:80
    }
}
"""


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    need_root_tools(*engine_sandbox.TOOLS, *ssh_hosts.TOOLS, "nft")
    specs = [HostSpec("h1", Setup("nft", True)), HostSpec("h2", Setup("legacy", True)), HostSpec("h3")]
    with ssh_fleet(specs, login_user=True, unreachable=(UNREACHABLE,)) as fleet:
        for alias, port in (("h1", 8080), ("h2", 9090)):
            engine = fleet.hosts[alias].engine
            assert engine is not None
            ensure_image(engine)
            engine.run_container(f"fleet-{alias}", "-p", f"{port}:80", IMAGE, "httpd", "-f", "-p", "80")
        h3 = fleet.hosts["h3"]
        h3.ns.run(["nft", "-f", "-"], input=H3_RULES, timeout=60)
        listener = subprocess.Popen(h3.ns.argv([BUSYBOX, "httpd", "-f", "-p", "8080", "-h", str(h3.root)]))
        try:
            assert wait_for(lambda: h3.ns.run(["ss", "-Htln", "sport = :8080"]).stdout.strip(), timeout=10)
            yield fleet
        finally:
            listener.terminate()
            listener.wait(timeout=10)


def fleet_json(fleet: Fleet, command: str, *args: str) -> tuple[int, dict, str]:
    """(exit code, parsed output, stderr) of `portscope COMMAND --json ARGS` in the client namespace."""
    proc = fleet.portscope(command, "--json", *args, "--timeout", "60")
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"{command} --json printed no JSON (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.returncode, doc, proc.stderr


@pytest.fixture(scope="module")
def fleet_list(fleet: Fleet) -> dict:
    code, doc, stderr = fleet_json(fleet, "list", *host_args(DESTINATIONS))
    assert code == 0, stderr
    return doc


@pytest.fixture(scope="module")
def fleet_conflicts(fleet: Fleet) -> dict:
    code, doc, stderr = fleet_json(fleet, "conflicts", *host_args(DESTINATIONS))
    assert code in (0, 1), stderr  # 1: a host has an error finding
    return doc


def host_args(destinations: tuple[str, ...]) -> list[str]:
    return [arg for dest in destinations for arg in ("--host", dest)]


def entry(doc: dict, alias: str) -> dict:
    (found,) = [e for e in doc["fleet"] if e["host"] == alias]
    return found


def without_host(result: dict, alias: str) -> dict:
    """A host's fleet result with the "host" key its bindings and findings carry taken out (checked to be `alias`)."""
    result = dict(result)
    for key in ("bindings", "findings"):
        if key in result:
            items = []
            for item in result[key]:
                assert item.get("host") == alias, (key, item)
                items.append({k: v for k, v in item.items() if k != "host"})
            result[key] = items
    return stable(result)


def stable(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def local_json(host: FleetHost, command: str) -> dict:
    """The host's own `portscope COMMAND --json`, run in its namespace as root."""
    proc = host.portscope(command, "--json")
    assert proc.returncode in ((0, 1) if command == "conflicts" else (0,)), proc.stderr
    return stable(json.loads(proc.stdout))


# --------------------------------------------------------------------------- the sandbox itself


def test_every_host_answers_over_ssh_and_the_user_is_not_root(fleet: Fleet) -> None:
    for alias in ROOT_HOSTS:
        proc = fleet.ssh(alias, 'id -u; echo "$DOCKER_HOST"')  # one string: the remote shell splits it
        assert proc.returncode == 0, proc.stderr
        uid, docker_host = proc.stdout.split()
        assert (uid, docker_host) == ("0", fleet.hosts[alias].docker_host)
    proc = fleet.ssh(USER_HOST, "id", "-u")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(fleet.user.uid if fleet.user else "?") != "0"
    proc = fleet.ssh(UNREACHABLE, "true", timeout=30)
    assert proc.returncode == 255 and "198.51.100.250" in proc.stderr


# --------------------------------------------------------------------------- list and conflicts


def test_fleet_list_is_each_hosts_own_list(fleet: Fleet, fleet_list: dict) -> None:
    assert [e["host"] for e in fleet_list["fleet"]] == list(DESTINATIONS)
    for alias in ROOT_HOSTS:
        got = entry(fleet_list, alias)
        assert got["reachable"] is True and got["error"] is None, got["error"]
        assert without_host(got["result"], alias) == local_json(fleet.hosts[alias], "list"), alias
    bindings = {alias: entry(fleet_list, alias)["result"]["bindings"] for alias in ROOT_HOSTS}
    assert any(b["host_port"] == 8080 and (b["container"] or {}).get("name") == "fleet-h1" for b in bindings["h1"])
    assert any(b["host_port"] == 9090 and (b["container"] or {}).get("name") == "fleet-h2" for b in bindings["h2"])
    assert any(b["host_port"] == 8080 and b["target_ip"] == "10.99.0.2" for b in bindings["h3"])


def test_fleet_conflicts_are_each_hosts_own(fleet: Fleet, fleet_conflicts: dict) -> None:
    assert [e["host"] for e in fleet_conflicts["fleet"]] == list(DESTINATIONS)
    for alias in ROOT_HOSTS:
        got = entry(fleet_conflicts, alias)
        assert got["reachable"] is True and got["error"] is None, got["error"]
        assert without_host(got["result"], alias) == local_json(fleet.hosts[alias], "conflicts"), alias
    h3_findings = entry(fleet_conflicts, "h3")["result"]["findings"]
    assert [f["kind"] for f in h3_findings] == ["shadowed-listener"]


# --------------------------------------------------------------------------- unreachable, no prompt


def test_an_unreachable_host_is_one_line_and_the_others_are_shown(fleet: Fleet, fleet_list: dict) -> None:
    down = entry(fleet_list, UNREACHABLE)
    assert down["reachable"] is False and down["result"] is None
    assert down["error"] and "\n" not in down["error"].strip()
    assert all(entry(fleet_list, alias)["reachable"] for alias in ROOT_HOSTS)


def test_hosts_file_gives_the_same_hosts_and_no_host_read_is_a_failure(fleet: Fleet, tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(f"{UNREACHABLE}\nh3\n")
    code, doc, stderr = fleet_json(fleet, "list", "--hosts", str(hosts_file))
    assert code == 0, stderr
    assert [(e["host"], e["reachable"]) for e in doc["fleet"]] == [(UNREACHABLE, False), ("h3", True)]
    code, doc, _ = fleet_json(fleet, "list", "--host", UNREACHABLE)
    assert code != 0
    assert [(e["host"], e["reachable"]) for e in doc["fleet"]] == [(UNREACHABLE, False)]


# --------------------------------------------------------------------------- without root


def test_a_non_root_login_reports_what_a_local_non_root_read_does(fleet: Fleet, fleet_list: dict) -> None:
    got = entry(fleet_list, USER_HOST)
    assert got["reachable"] is True, got["error"]
    result = got["result"]
    assert result["host"]["is_root"] is False
    assert not any(b["read"] for b in result["backends"] if b["backend"] == "iptables-nft")
    assert result["engine"]["reachable"] is False
    assert result["warnings"], "what could not be read is said"
    code, stdout, stderr = run_as_user(fleet, fleet.hosts["h1"], ["list", "--json"])
    assert code == 0, stderr
    assert without_host(result, USER_HOST) == stable(json.loads(stdout))


def run_as_user(fleet: Fleet, host: FleetHost, argv: list[str]) -> tuple[int, str, str]:
    """`portscope ARGV` in a child that entered the host's namespace and became the fleet's non-root user."""
    user = fleet.user
    assert user is not None
    env = {"DOCKER_HOST": host.docker_host, "PORTSCOPE_STATE_DIR": str(host.state_dir)}
    return run_cli_as(host.ns.path, user.uid, user.gid, env, argv)


# --------------------------------------------------------------------------- teardown


def test_a_fleet_leaves_nothing_behind() -> None:
    need_root_tools(*ssh_hosts.TOOLS)
    with ssh_fleet([HostSpec("a1")], login_user=True) as small:
        assert small.ssh("a1-user", "true").returncode == 0
    assert ssh_hosts.leftovers(small) == []
