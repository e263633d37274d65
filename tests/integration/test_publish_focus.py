"""The conflict check narrowed to one port gives the whole host's verdict, on live set-ups.

On each Docker set-up (tests/sandbox/engine.py SETUPS): containers published on TCP, UDP, loopback and a
range, a stopped one that asks for a port, a portscope publish and a block; and on native nftables
(tests/sandbox/nft_host.py, with a Docker-29-shaped `docker-bridges` table and a portscope publish). For every
port something publishes and a few free ones, at three host addresses and both protocols, the verdict of
`focus.check_port` equals `conflicts.verdict` on the whole live snapshot, read once in the namespace; and so
does `check_port` on a snapshot read as publish reads it (`scope="port"`: rules translated only when used).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import Portscope, run_udp_echo, run_web, session
from tests.sandbox import nft_host
from tests.sandbox.engine import BUSYBOX, IMAGE, Engine
from tests.sandbox.nft_host import TARGET_IP, NftHost

pytestmark = pytest.mark.integration

#: Runs in the namespace: the whole verdict and the focused one for every used port and a few free ones.
COMPARE = r"""
import json
from portscope.core.inventory import build_inventory
from portscope.core.live import read_live
from portscope.core.publish import state
from portscope.core.publish.conflicts import verdict
from portscope.core.publish.focus import check_port

snap = read_live()
port_snap = read_live(scope="port")  # what publish reads: rules left unparsed until the check on a port uses them
with state.locked() as folder:
    stored = state.load(folder).bindings
used = {(b.host_port, b.protocol) for b in build_inventory(snap).bindings if b.host_port and b.protocol != "all"}
used |= {(s.host_port, s.protocol) for s in stored}
ports = {port for port, _ in used} | {1, 8081, 40000}
checked, with_errors, mismatches = 0, 0, []
for port in sorted(ports):
    for protocol in ("tcp", "udp"):
        for host_ip in ("0.0.0.0", "127.0.0.1", "::"):
            full = verdict(snap, host_ip, port, protocol, stored)
            checked += 1
            with_errors += bool(full.errors)
            for read in (snap, port_snap):
                narrow = check_port(read, host_ip, port, protocol, stored)
                if narrow != full:
                    got = [full.errors + full.warnings, narrow.errors + narrow.warnings]
                    mismatches.append([host_ip, port, protocol, read is port_snap, *got])
print(json.dumps({"used": sorted(used), "checked": checked, "with_errors": with_errors, "mismatches": mismatches}))
"""


def compared(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def ps(engine: Engine) -> Iterator[Portscope]:
    names = ("fc-web", "fc-local", "fc-range", "fc-dns", "fc-plain", "fc-stopped")
    with session(engine, *names) as ps:
        run_web(engine, "fc-web", "-p", "8080:80")
        run_web(engine, "fc-local", "-p", "127.0.0.1:9000:80")
        run_web(engine, "fc-range", "-p", "8000-8002:8000-8002")
        run_udp_echo(engine, "fc-dns")
        run_web(engine, "fc-plain")
        engine.docker("create", "--name", "fc-stopped", "-p", "7000:80", IMAGE, "true")
        engine.containers.append("fc-stopped")
        yield ps


def test_focused_verdicts_equal_the_full_ones_on_docker(ps: Portscope) -> None:
    ps.ok("publish", "fc-plain", "18080:80")
    ps.ok("publish", "fc-dns", "15353:53/udp")
    block = ps.binding_id(ps.ok("block", "8080/tcp"))
    try:
        result = compared(ps.api(COMPARE))
    finally:
        ps.ok("unblock", block)
        ps.ok("unpublish", "18080/tcp")
        ps.ok("unpublish", "15353/udp")
    used = {tuple(u) for u in result["used"]}
    assert {(8080, "tcp"), (9000, "tcp"), (8001, "tcp"), (18080, "tcp"), (15353, "udp")} <= used, used
    assert result["with_errors"] > 0 and result["checked"] >= 3 * 2 * len(used)
    assert result["mismatches"] == []


DOCKER29 = """table ip docker-bridges {
\tchain nat-prerouting-and-output {
\t\tiifname != "docker0" tcp dport 8080 counter dnat to 172.17.0.2:80 comment "DNAT"
\t\tiifname != "docker0" udp dport 5353 counter dnat to 172.17.0.3:53 comment "DNAT"
\t\tiifname != "docker0" tcp dport 8000-8002 counter dnat to 172.17.0.4 comment "DNAT"
\t}
\tchain nat-PREROUTING {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tfib daddr type local counter jump nat-prerouting-and-output
\t}
\tchain nat-OUTPUT {
\t\ttype nat hook output priority -100; policy accept;
\t\tip daddr != 127.0.0.0/8 fib daddr type local counter jump nat-prerouting-and-output
\t}
\tchain filter-forward-in__docker0 {
\t\tct state established,related counter accept
\t\tmeta mark & 0x10000000 == 0x10000000 accept comment "ALLOW FW MARK"
\t\tip daddr 172.17.0.2 tcp dport 80 counter accept
\t\tcounter drop comment "UNPUBLISHED PORT DROP"
\t}
\tchain filter-FORWARD {
\t\ttype filter hook forward priority filter; policy accept;
\t\toifname "docker0" jump filter-forward-in__docker0
\t}
}
"""


def test_focused_verdicts_equal_the_full_ones_on_native_nftables() -> None:
    need_root_tools("ip", "nsenter", "nft", "sysctl", BUSYBOX)
    env: NftHost = nft_host.start()
    try:
        env.nft("-f", "-", stdin=DOCKER29)
        proc = env.portscope("publish", "--backend", "nftables", TARGET_IP, "28050:80")
        assert proc.returncode == 0, proc.stderr
        result = compared(env.api(COMPARE))
        unpublished = env.portscope("unpublish", "28050/tcp")
        assert unpublished.returncode == 0, unpublished.stderr
    finally:
        nft_host.stop(env)
    used = {tuple(u) for u in result["used"]}
    assert {(8080, "tcp"), (5353, "udp"), (8000, "tcp"), (28050, "tcp")} <= used, used
    assert result["with_errors"] > 0
    assert result["mismatches"] == []
