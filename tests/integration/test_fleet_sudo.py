"""`--sudo` over real SSH and a real sudo (issue 16): a fleet's non-root login reads and changes a host through
`sudo -n`, refused without a sudoers grant and allowed with one (tests/sandbox/ssh_hosts.py, `grant_sudo`):

- h1: no engine; a native nftables DNAT of port 8080 (readable by root only), and busybox httpd on 10.98.0.2:80
  (an address on its loopback) as a plain-IP target to publish to;
- h2: no engine; an iptables-legacy DNAT of port 8081;
- h1-user, h2-user: the same hosts, logged into as the fleet's non-root user.

The grant (only during the tests that use it) lets that user run `sudo -n /usr/bin/python3` and nothing else.
Every portscope run has stdin closed, `--timeout` and a subprocess timeout: a prompt would fail the test by a
bound, never hang it. The rules are read with the real tools in the host's namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import normalized
from tests.sandbox import ssh_hosts
from tests.sandbox.client import tcp_get
from tests.sandbox.engine import BUSYBOX, wait_for
from tests.sandbox.ssh_hosts import Fleet, FleetHost, HostSpec, ssh_fleet, sudo_granted

pytestmark = pytest.mark.integration

ROOT_HOSTS = ("h1", "h2")
USER_HOSTS = ("h1-user", "h2-user")
TARGET = "10.98.0.2"  # on h1's loopback: a plain-IP publish target
PORT = 19090
VOLATILE = ("taken_at",)
H1_RULES = """
table ip sudo-test {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local tcp dport 8080 dnat to 10.99.0.2:80
    }
}
"""
H2_RULE = ("-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "8081", "-j", "DNAT", "--to-destination",
           "10.99.0.3:80")  # fmt: skip
SUDO_REFUSED = "sudo asks for a password there"


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    need_root_tools(*ssh_hosts.TOOLS, *ssh_hosts.SUDO_TOOLS, "nft", "iptables-legacy", BUSYBOX)
    with ssh_fleet([HostSpec("h1"), HostSpec("h2")], login_user=True) as fleet:
        h1, h2 = fleet.hosts["h1"], fleet.hosts["h2"]
        h1.ns.run(["nft", "-f", "-"], input=H1_RULES, timeout=60)
        h2.ns.run(["iptables-legacy", *H2_RULE], timeout=60)
        h1.ns.run(["ip", "addr", "add", f"{TARGET}/32", "dev", "lo"], timeout=30)
        www = h1.root / "www"
        www.mkdir()
        (www / "index.html").write_text("hello from h1\n")
        web = subprocess.Popen(h1.ns.argv([BUSYBOX, "httpd", "-f", "-p", f"{TARGET}:80", "-h", str(www)]))
        try:
            assert wait_for(lambda: tcp_get(h1.ns, TARGET, 80, timeout=2), timeout=10), "h1's web never answered"
            yield fleet
        finally:
            web.terminate()
            web.wait(timeout=10)


@pytest.fixture
def granted(fleet: Fleet) -> Iterator[Path]:
    """The fleet's user may run `sudo -n python3` for the duration of one test."""
    with sudo_granted(fleet) as path:
        yield path


@pytest.fixture
def refused(fleet: Fleet) -> None:
    """No grant is in force: sudo wants a password from the fleet's user."""
    assert not fleet.sudoers.exists()


def portscope(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    """`portscope ARGS --timeout 30` in the client namespace: stdin closed, killed after 120 s."""
    return fleet.portscope(*args, "--timeout", "30", timeout=120)


def fleet_list(fleet: Fleet, *args: str) -> tuple[int, dict, str]:
    proc = portscope(fleet, "list", "--json", *args)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"list --json printed no JSON (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.returncode, doc, proc.stderr


def host_args(*aliases: str) -> list[str]:
    return [arg for alias in aliases for arg in ("--host", alias)]


def entry(doc: dict, alias: str) -> dict:
    (found,) = [e for e in doc["fleet"] if e["host"] == alias]
    return found


def untagged(result: dict, alias: str) -> dict:
    """A host's list result with the "host" of its bindings (checked to be `alias`) and `taken_at` taken out."""
    bindings = []
    for binding in result["bindings"]:
        assert binding["host"] == alias, binding
        bindings.append({k: v for k, v in binding.items() if k != "host"})
    return {**{k: v for k, v in result.items() if k not in VOLATILE}, "bindings": bindings}


def rules(host: FleetHost) -> tuple[str, str]:
    """The host's rules as its own tools print them: the nft ruleset (iptables-nft's tables too) and
    iptables-legacy-save without counters."""
    ruleset = host.ns.run(["nft", "-s", "list", "ruleset"], capture_output=True, timeout=60).stdout
    legacy = host.ns.run(["iptables-legacy-save"], capture_output=True, timeout=60).stdout
    return ruleset, normalized(legacy)


def stored(host: FleetHost) -> list[dict]:
    proc = host.portscope("status", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["bindings"]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portscope: "), proc.stderr
    return lines[0]


def get(fleet: Fleet) -> str | None:
    """An HTTP GET from the client namespace to h1's address, port PORT."""
    return tcp_get(fleet.client_ns, fleet.hosts["h1"].address, PORT, timeout=2)


# --------------------------------------------------------------------------- reads


def test_without_sudo_the_user_reads_what_a_non_root_user_can(fleet: Fleet) -> None:
    code, doc, stderr = fleet_list(fleet, "--host", "h1-user")
    assert code == 0, stderr
    got = entry(doc, "h1-user")
    assert got["reachable"] is True and got["error"] is None
    assert got["result"]["host"]["is_root"] is False
    assert not any(b["host_port"] == 8080 for b in got["result"]["bindings"]), "a non-root read saw root's rules"


def test_sudo_refused_is_one_line_and_the_other_hosts_are_read(fleet: Fleet, refused: None) -> None:
    code, doc, stderr = fleet_list(fleet, "--sudo", *host_args("h1", "h1-user", "h2"))
    assert code == 0, stderr  # list: the worst read host's status
    assert [e["host"] for e in doc["fleet"]] == ["h1", "h1-user", "h2"]
    down = entry(doc, "h1-user")
    assert (down["reachable"], down["result"]) == (False, None)
    assert down["error"] == f"h1-user: {SUDO_REFUSED}: allow `sudo -n python3` (NOPASSWD) or log in as root"
    assert f"portscope: {down['error']}" in stderr.splitlines()
    for alias in ROOT_HOSTS:  # root goes through `sudo -n` too, without a password
        got = entry(doc, alias)
        assert got["reachable"] is True and got["error"] is None, got["error"]
        assert got["result"]["host"]["is_root"] is True

    code, _, _ = fleet_list(fleet, "--sudo", "--strict", *host_args("h1", "h1-user"))
    assert code == 4, "--strict: a host not read whole"
    code, doc, _ = fleet_list(fleet, "--sudo", "--host", "h1-user")
    assert code == 1, "no host could be read"
    assert [(e["host"], e["reachable"]) for e in doc["fleet"]] == [("h1-user", False)]


def test_with_the_grant_a_sudo_read_is_the_root_read(fleet: Fleet, granted: Path) -> None:
    code, as_root, stderr = fleet_list(fleet, *host_args(*ROOT_HOSTS))
    assert code == 0, stderr
    code, through_sudo, stderr = fleet_list(fleet, "--sudo", *host_args(*USER_HOSTS))
    assert code == 0, stderr
    for alias, user_alias in zip(ROOT_HOSTS, USER_HOSTS, strict=True):
        root_entry, sudo_entry = entry(as_root, alias), entry(through_sudo, user_alias)
        assert sudo_entry["reachable"] is True and sudo_entry["error"] is None, sudo_entry["error"]
        assert untagged(sudo_entry["result"], user_alias) == untagged(root_entry["result"], alias), alias
    h1 = entry(through_sudo, "h1-user")["result"]
    h2 = entry(through_sudo, "h2-user")["result"]
    assert h1["host"]["is_root"] is True
    assert any(b["host_port"] == 8080 and b["target_ip"] == "10.99.0.2" for b in h1["bindings"])
    assert any(b["host_port"] == 8081 and b["target_ip"] == "10.99.0.3" for b in h2["bindings"])


# --------------------------------------------------------------------------- changes


def test_a_change_through_sudo_carries_traffic_and_is_undone(fleet: Fleet, granted: Path) -> None:
    h1 = fleet.hosts["h1"]
    assert get(fleet) is None, "the port answers before anything is published"
    before = rules(h1)
    preview = portscope(fleet, "publish", "--host", "h1-user", "--sudo", "--dry-run", "--json", TARGET, f"{PORT}:80")
    assert preview.returncode == 0, preview.stderr
    doc = json.loads(preview.stdout)
    assert rules(h1) == before, "a dry run changed h1's rules"
    assert stored(h1) == []
    assert (doc["host"], doc["action"], doc["dry_run"], doc["host_port"]) == ("h1-user", "publish", True, PORT)
    local = h1.portscope("publish", "--dry-run", "--json", TARGET, f"{PORT}:80")  # h1's own preview, as root
    assert local.returncode == 0, local.stderr
    assert {k: v for k, v in doc.items() if k != "host"} == json.loads(local.stdout)

    done = portscope(fleet, "publish", "--host", "h1-user", "--sudo", "--json", TARGET, f"{PORT}:80")
    assert done.returncode == 0, done.stderr
    binding_id = json.loads(done.stdout)["binding"]
    answer = wait_for(lambda: get(fleet), timeout=20)
    assert answer is not None and "hello from h1" in answer, "the client does not reach the published port"
    (binding,) = stored(h1)  # in h1's state folder (sudo keeps PORTSCOPE_STATE_DIR), made by the user (SUDO_USER)
    assert fleet.user is not None
    assert (binding["id"], binding["host_port"], binding["target_ip"]) == (binding_id, PORT, TARGET)
    assert binding["who"] == fleet.user.name

    gone = portscope(fleet, "unpublish", "--host", "h1-user", "--sudo", "--json", str(PORT))
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["binding"] == binding_id
    assert wait_for(lambda: get(fleet) is None, timeout=20), "still reachable after unpublish"
    assert stored(h1) == []
    assert rules(h1) == before


def test_a_change_sudo_refuses_is_one_line_and_changes_nothing(fleet: Fleet, refused: None) -> None:
    h1 = fleet.hosts["h1"]
    before = rules(h1)
    for extra in ((), ("--dry-run",)):
        proc = portscope(fleet, "publish", "--host", "h1-user", "--sudo", *extra, TARGET, f"{PORT}:80")
        assert proc.returncode == 1 and proc.stdout == ""
        assert one_error_line(proc) == (
            f"portscope: h1-user: {SUDO_REFUSED}: allow `sudo -n python3` (NOPASSWD) or log in as root"
        )
    # without --sudo the non-root login cannot change the rules either: one line, nothing changed
    proc = portscope(fleet, "publish", "--host", "h1-user", TARGET, f"{PORT}:80")
    assert proc.returncode != 0 and proc.stdout == ""
    assert one_error_line(proc).startswith("portscope: h1-user: ")
    assert rules(h1) == before
    assert stored(h1) == []
    assert get(fleet) is None


# --------------------------------------------------------------------------- the grant itself


def test_the_grant_is_python3_only_and_goes_with_the_fleet() -> None:
    need_root_tools(*ssh_hosts.TOOLS, *ssh_hosts.SUDO_TOOLS)
    with ssh_fleet([HostSpec("a1")], login_sudo=True) as small:
        assert small.user is not None
        drop_in = small.sudoers
        assert drop_in.stat().st_mode & 0o777 == 0o440
        assert subprocess.run([ssh_hosts.VISUDO, "-cf", str(drop_in)], capture_output=True).returncode == 0
        grants = [line for line in drop_in.read_text().splitlines() if line and not line.startswith("#")]
        assert all(small.user.name in line for line in grants)
        python = ssh_hosts.sudo_python()
        allowed = small.ssh("a1-user", f"sudo -n {python} -c 'import os; print(os.geteuid())'")
        assert (allowed.returncode, allowed.stdout.strip()) == (0, "0"), allowed.stderr
        other = small.ssh("a1-user", "sudo -n /bin/id -u")
        assert other.returncode != 0 and "password is required" in other.stderr
        ssh_hosts.revoke_sudo(small)
        assert not drop_in.exists()
        again = small.ssh("a1-user", f"sudo -n {python} -c 'print(1)'")
        assert again.returncode != 0 and "password is required" in again.stderr
        ssh_hosts.grant_sudo(small)
    assert ssh_hosts.leftovers(small) == []


def test_reap_stale_removes_a_drop_in_whose_fleet_is_gone() -> None:
    need_root_tools(*ssh_hosts.SUDO_TOOLS)
    orphan = ssh_hosts.sudoers_path(Path("/tmp/psh-gone-h6test"))
    assert not Path("/tmp/psh-gone-h6test").exists()
    orphan.write_text("# a drop-in of a fleet whose run died\n")
    orphan.chmod(0o440)
    try:
        assert orphan.name in ssh_hosts.reap_stale()
        assert not orphan.exists()
    finally:
        orphan.unlink(missing_ok=True)
