"""The fleet TUI over real SSH (issue 16): one app, headless in the fleet's client namespace
(tests/integration/fleet_app_driver.py), reading three namespace hosts (tests/sandbox/ssh_hosts.py):

- h1 and h3: no engine (h3 with a native nftables DNAT of 8080 to nowhere: a binding of its own);
- h2: a sandboxed dockerd on iptables-nft (userland proxy on), portscope installed (the fleet's default): `web`
  (busybox httpd) runs without -p, `eph` with Docker's `-p 40000:80` (inside the ephemeral range: a finding).

The Hosts view shows the three hosts; h2's Ports rows carry HOST h2 and the finding; then the publish form,
driven by key presses, publishes web:80 on h2 as 0.0.0.0:PORT and a real HTTP request from the client namespace
to h2's address gets web's answer; `x` then `y` unpublishes it and the request gets nothing. One engine only, to
spare the CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import run_web
from tests.sandbox import engine as engine_sandbox
from tests.sandbox import ssh_hosts
from tests.sandbox.client import tcp_get
from tests.sandbox.engine import IMAGE, REPO_ROOT, Setup, ensure_image, wait_for
from tests.sandbox.ssh_hosts import Fleet, HostSpec, ssh_fleet

pytestmark = pytest.mark.integration

HOSTS = ("h1", "h2", "h3")
PORT = 19191
H3_RULES = """
table ip fleet-tui {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local tcp dport 8080 dnat to 10.99.0.2:80
    }
}
"""


class Driver:
    """The app in the client namespace, one JSON answer per command."""

    def __init__(self, fleet: Fleet) -> None:
        argv = fleet.client_ns.argv([sys.executable, "-m", "tests.integration.fleet_app_driver", *HOSTS])
        self.proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=fleet.env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    def answer(self) -> object:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            pytest.fail(f"the app ended: {self.proc.stderr.read()[-3000:]}")
        doc = json.loads(line)
        assert not (isinstance(doc, dict) and "error" in doc), doc
        return doc

    def ask(self, command: str) -> object:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    need_root_tools(*engine_sandbox.TOOLS, *ssh_hosts.TOOLS, "nft")
    specs = [HostSpec("h1"), HostSpec("h2", Setup("nft", True)), HostSpec("h3")]
    with ssh_fleet(specs) as fleet:
        engine = fleet.hosts["h2"].engine
        assert engine is not None
        ensure_image(engine)
        run_web(engine, "web")
        engine.run_container("eph", "-p", "40000:80", IMAGE, "httpd", "-f", "-p", "80")
        fleet.hosts["h3"].ns.run(["nft", "-f", "-"], input=H3_RULES, timeout=60)
        yield fleet


@pytest.fixture(scope="module")
def app(fleet: Fleet) -> Iterator[Driver]:
    driver = Driver(fleet)
    try:
        driver.answer()  # ready: the first read of every host is shown
        yield driver
    finally:
        driver.close()


def get(fleet: Fleet) -> str | None:
    """An HTTP GET from the client namespace to h2's address and PORT."""
    return tcp_get(fleet.client_ns, fleet.hosts["h2"].address, PORT, timeout=2)


def test_the_hosts_view_shows_the_three_hosts(app: Driver) -> None:
    hosts = app.ask("hosts")
    assert isinstance(hosts, dict)
    assert list(hosts) == list(HOSTS)
    assert all(hosts[h]["REACHABLE"] == "yes" and hosts[h]["ERROR"] == "" for h in HOSTS), hosts
    assert hosts["h2"]["ENGINE"].startswith("Docker ") and hosts["h1"]["ENGINE"] == "no Docker"
    assert hosts["h2"]["PORTS"] != "0" and hosts["h3"]["PORTS"] == "1"


def test_h2s_ports_carry_their_host_and_findings(app: Driver) -> None:
    rows = app.ask("ports h2")
    assert isinstance(rows, list) and rows
    assert {r["HOST"] for r in rows} == {"h2"}
    eph = [r for r in rows if r["PUBLISHED"] == "0.0.0.0:40000/tcp"]
    assert eph and eph[0]["CONTAINER"] == "eph" and "ephemeral-overlap" in eph[0]["ISSUES"] and eph[0]["!"]
    h3 = app.ask("ports h3")
    assert isinstance(h3, list)
    shown = [(r["HOST"], r["PUBLISHED"], r["CONTAINER PORT"]) for r in h3]
    assert shown == [("h3", "0.0.0.0:8080/tcp", "10.99.0.2:80")]


def test_publish_from_the_form_carries_traffic_on_h2_and_unpublish_stops_it(fleet: Fleet, app: Driver) -> None:
    assert get(fleet) is None, "the port answers before anything is published"
    done = app.ask(f"publish h2 web {PORT} 80")
    assert isinstance(done, dict)
    assert f"0.0.0.0:{PORT}/tcp → web:80 on h2" in done["preview"] and "+ " in done["preview"]
    assert any(n.startswith("Published: Published ps-") for n in done["notices"]), done["notices"]
    answer = wait_for(lambda: get(fleet), timeout=20)
    assert answer is not None and "hello from web" in answer, "the client does not reach the published port"
    rows = app.ask("ports h2")
    assert isinstance(rows, list)
    mine = [r for r in rows if r["PUBLISHED"] == f"0.0.0.0:{PORT}/tcp"]
    assert mine and mine[0]["OWNER"] == "portscope" and mine[0]["CONTAINER"] == "web"  # h2 read again

    gone = app.ask(f"unpublish h2 {PORT}")
    assert isinstance(gone, dict)
    assert gone["action"] == "unpublish" and "- " in gone["preview"]
    assert wait_for(lambda: get(fleet) is None, timeout=20), "still reachable after unpublish"
    rows = app.ask("ports h2")
    assert isinstance(rows, list) and not [r for r in rows if r["PUBLISHED"] == f"0.0.0.0:{PORT}/tcp"]
