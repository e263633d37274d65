"""The native nftables backend on a real kernel, with real packets, in namespaces this module creates.

A "host" namespace with only nftables (no iptables rules), a "target" namespace behind it running busybox
httpd (TCP 80) and a UDP echo (53), and a "client" on another veth (see tests/sandbox/nft_host.py).
portscope runs in the host namespace with `--backend nftables` and a plain-IP target. A `table inet filter`
of someone else's is created first and must be byte-identical after every command.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.sandbox import nft_host
from tests.sandbox.client import tcp_get, udp_ask
from tests.sandbox.engine import BUSYBOX
from tests.sandbox.nft_host import CLIENT_SIDE_IP, CLIENT_SIDE_IP6, PAGE, TARGET_IP, TARGET_IP6, NftHost

pytestmark = pytest.mark.integration

OTHER_TABLE = (
    "table inet filter {\n"
    "\tchain input {\n"
    "\t\ttype filter hook input priority filter; policy accept;\n"
    '\t\ttcp dport 9999 drop comment "someone else\'s"\n'
    "\t}\n"
    "}\n"
)
BAD_RULE = "add rule ip portscope forward tcp dport 1 dnat to 10.9.9.9"  # nat in a filter chain: the kernel refuses
NFT = ("--backend", "nftables")


@pytest.fixture(scope="module")
def env() -> Iterator[NftHost]:
    need_root_tools("ip", "nsenter", "nft", "sysctl", BUSYBOX)
    env = nft_host.start()
    try:
        env.nft("-f", "-", stdin=OTHER_TABLE)
        yield env
    finally:
        nft_host.stop(env)


@pytest.fixture
def ps(env: NftHost) -> Iterator[NftHost]:
    """Each test starts without bindings and must leave the other table exactly as it was."""
    other = env.nft("list", "table", "inet", "filter")
    yield env
    assert env.nft("list", "table", "inet", "filter") == other, "portscope changed a table that is not its own"
    assert env.iptables_rules() == "", "portscope wrote iptables rules on the nftables backend"
    for binding in json.loads(env.portscope("status", "--json").stdout)["bindings"]:  # drift or not
        ok(env, "unblock" if binding["kind"] == "block" else "unpublish", binding["id"])
    assert "table ip portscope" not in env.ruleset() and not ours(env), "rules left behind"


def ok(env: NftHost, *args: str) -> str:
    other = env.nft("list", "table", "inet", "filter")
    proc = env.portscope(*args)
    assert proc.returncode == 0, f"portscope {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}"
    assert env.nft("list", "table", "inet", "filter") == other, f"portscope {' '.join(args)} changed inet filter"
    return proc.stdout


def binding_id(stdout: str) -> str:
    match = re.search(r"\b(ps-[0-9a-f]{8})\b", stdout)
    assert match, stdout
    return match.group(1)


def serves(ns: object, host: str, port: int) -> bool:
    reply = tcp_get(ns, host, port, timeout=3)  # type: ignore[arg-type]
    return reply is not None and PAGE in reply


def ours(env: NftHost) -> list[str]:
    """Every rule of portscope's as `table/chain: rule` (rules carry `comment "portscope:<id>"`)."""
    out, where = [], ""
    for raw in env.ruleset().splitlines():
        line = raw.strip()
        if line.startswith(("table ", "chain ")):
            where = f"{where.split('/')[0]}/{line.split()[-2]}" if line.startswith("chain ") else line
        elif '"portscope:ps-' in line:
            out.append(f"{where}: {line}")
    return out


def test_publish_carries_tcp_and_udp_from_the_client_and_the_host(ps: NftHost) -> None:
    tcp = binding_id(ok(ps, "publish", *NFT, TARGET_IP, "28080:80"))
    udp = binding_id(ok(ps, "publish", *NFT, TARGET_IP, "28053:53/udp"))
    assert serves(ps.client, CLIENT_SIDE_IP, 28080), "client over TCP"
    assert udp_ask(ps.client, CLIENT_SIDE_IP, 28053, "hi") == "pong:hi", "client over UDP"
    assert serves(ps.host, CLIENT_SIDE_IP, 28080), "the host itself (output hook)"
    assert "table ip portscope" in ps.ruleset()
    status = ps.portscope("status")
    assert status.returncode == 0 and "in sync with the kernel (nftables)" in status.stdout, status.stdout
    assert json.loads(Path(ps.state_dir, "state.json").read_text())["backend"] == "nftables"
    ok(ps, "unpublish", tcp)
    assert tcp_get(ps.client, CLIENT_SIDE_IP, 28080, timeout=2) is None, "still reachable after unpublish"
    assert udp_ask(ps.client, CLIENT_SIDE_IP, 28053, "again") == "pong:again", "the other binding went too"
    ok(ps, "unpublish", udp)
    assert udp_ask(ps.client, CLIENT_SIDE_IP, 28053, "gone", timeout=2) is None
    assert "portscope" not in ps.ruleset().replace(OTHER_TABLE, ""), "an empty table is left behind"


def test_ipv6_and_loopback_bindings(ps: NftHost) -> None:
    ok(ps, "publish", *NFT, TARGET_IP6, "[::]:28081:80")
    assert serves(ps.client, CLIENT_SIDE_IP6, 28081)
    out = ps.portscope("publish", *NFT, TARGET_IP, "127.0.0.1:28082:80")
    assert out.returncode == 0, out.stderr
    assert serves(ps.host, "127.0.0.1", 28082), "loopback binding from the host"
    assert tcp_get(ps.client, CLIENT_SIDE_IP, 28082, timeout=2) is None, "a loopback binding reached from outside"
    assert "table ip6 portscope" in ps.ruleset() and 'iifname != "lo"' in ps.ruleset()


def test_a_refused_batch_changes_nothing(ps: NftHost) -> None:
    bid = binding_id(ok(ps, "publish", *NFT, TARGET_IP, "28001:80"))
    before, state_before = ps.ruleset(), ok(ps, "status", "--json")
    code = (
        "from portscope.core.publish.ops import publish\n"
        "from portscope.core.publish.errors import RuleRefusedError\n"
        "try:\n"
        f"    publish({TARGET_IP!r}, '28002:80', backend='nftables', inject={{'nft': [{BAD_RULE!r}]}})\n"
        "except RuleRefusedError as exc:\n"
        "    print(exc.exit_code, exc)\n"
        "else:\n"
        "    print('accepted')\n"
    )
    proc = ps.api(code)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("6 the kernel refused the rules") and "nothing was changed" in line, line
    assert ps.ruleset() == before, "the refused batch changed the ruleset"
    assert ok(ps, "status", "--json") == state_before
    assert serves(ps.client, CLIENT_SIDE_IP, 28001) and tcp_get(ps.client, CLIENT_SIDE_IP, 28002, timeout=2) is None
    ok(ps, "unpublish", bid)


def test_lost_tables_show_as_drift_and_apply_restores_traffic(ps: NftHost) -> None:
    bid = binding_id(ok(ps, "publish", *NFT, TARGET_IP, "28010:80"))
    assert serves(ps.client, CLIENT_SIDE_IP, 28010)
    ps.nft("delete", "table", "ip", "portscope")  # what `nft flush ruleset` does to our part
    assert tcp_get(ps.client, CLIENT_SIDE_IP, 28010, timeout=2) is None
    drift = ps.portscope("status")
    assert drift.returncode == 1 and "drift: missing table ip portscope" in drift.stdout, drift.stdout
    assert "rewritten" in ok(ps, "apply")
    assert serves(ps.client, CLIENT_SIDE_IP, 28010), "apply did not restore traffic"
    assert ps.portscope("status").returncode == 0
    assert "already in place" in ok(ps, "apply"), "apply is not idempotent"
    assert sum(1 for line in ours(ps) if bid in line and "dnat to" in line) == 2  # prerouting and output


def test_a_changed_rule_is_drift_and_reconcile_repairs_it(ps: NftHost) -> None:
    ok(ps, "publish", *NFT, TARGET_IP, "28011:80")
    ps.nft("flush", "chain", "ip", "portscope", "prerouting")
    drift = ps.portscope("status")
    assert drift.returncode == 1 and "missing: ip portscope/prerouting: " in drift.stdout, drift.stdout
    ok(ps, "reconcile")
    assert ps.portscope("status").returncode == 0 and serves(ps.client, CLIENT_SIDE_IP, 28011)


def test_concurrent_publishes_leave_no_duplicate_or_partial_rules(ps: NftHost) -> None:
    procs = [ps.popen("publish", *NFT, TARGET_IP, f"{port}:80") for port in (28020, 28021, 28022)]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(code == 0 for _, _, code in results), results
    lines = ours(ps)
    assert len(lines) == len(set(lines)) == 3 * 4, lines  # per binding: DNAT (prerouting, output), masquerade, accept
    for port in (28020, 28021, 28022):
        assert serves(ps.client, CLIENT_SIDE_IP, port)
    assert ps.portscope("status").returncode == 0


def test_blank_host_port_gets_an_ephemeral_one(ps: NftHost) -> None:
    out = ok(ps, "publish", *NFT, TARGET_IP, ":80")
    port = int(re.search(r":(\d+)/tcp", out).group(1))  # type: ignore[union-attr]
    low, high = (int(x) for x in ps.host.run(["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).stdout.split())
    assert low <= port <= high
    assert serves(ps.client, CLIENT_SIDE_IP, port)


def test_block_drops_another_owners_binding_and_unblock_restores_it(ps: NftHost) -> None:
    ps.nft(
        "-f", "-",
        stdin="table ip manual {\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        f"\t\ttcp dport 28030 dnat to {TARGET_IP}:80\n\t}}\n}}\n",
    )  # fmt: skip
    try:
        manual = ps.nft("list", "table", "ip", "manual")
        assert serves(ps.client, CLIENT_SIDE_IP, 28030)
        bid = binding_id(ok(ps, "block", *NFT, "28030/tcp"))
        assert tcp_get(ps.client, CLIENT_SIDE_IP, 28030, timeout=2) is None, "block did not drop"
        assert ps.nft("list", "table", "ip", "manual") == manual, "block touched the other owner's table"
        ok(ps, "unblock", bid)
        assert serves(ps.client, CLIENT_SIDE_IP, 28030), "unblock did not restore traffic"
    finally:
        ps.nft("delete", "table", "ip", "manual")


DOCKER_LIKE = (
    "table ip docker-bridges {{\n"
    "\tchain filter-FORWARD {{\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    '\t\toifname "hc0" jump filter-forward-in__hc0\n'
    "\t}}\n"
    "\tchain filter-forward-in__hc0 {{\n"
    "\t\tct state established,related accept\n"
    "{mark}"
    '\t\tdrop comment "UNPUBLISHED PORT DROP"\n'
    "\t}}\n"
    "}}\n"
)
MARK_RULE = '\t\tmeta mark & 0x10000000 == 0x10000000 accept comment "ALLOW FW MARK"\n'


def test_docker_nftables_drop_is_refused_without_the_fwmark_and_passed_with_it(ps: NftHost) -> None:
    """A table shaped like Docker 29's: without `bridge-accept-fwmark` the publish is refused, with it it works."""
    ps.nft("-f", "-", stdin=DOCKER_LIKE.format(mark=""))
    try:
        before = ps.ruleset()
        proc = ps.portscope("publish", TARGET_IP, "28040:80")  # auto: docker-bridges means native nftables
        assert proc.returncode == 6 and "bridge-accept-fwmark" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert ps.ruleset() == before
        ps.nft("delete", "table", "ip", "docker-bridges")
        ps.nft("-f", "-", stdin=DOCKER_LIKE.format(mark=MARK_RULE))
        ok(ps, "publish", TARGET_IP, "28040:80")
        assert "meta mark set meta mark | 0x10000000" in ps.nft("list", "table", "ip", "portscope")
        assert serves(ps.client, CLIENT_SIDE_IP, 28040), "the mark did not pass Docker's drop"
        assert ps.portscope("status").returncode == 0
    finally:
        subprocess.run(ps.host.argv(["nft", "delete", "table", "ip", "docker-bridges"]), check=False)


def test_switching_backend_moves_the_bindings(ps: NftHost) -> None:
    """Bindings written with iptables-nft move to nftables on `apply --backend nftables`: old rules removed."""
    need_root_tools("iptables-nft-restore", "ip6tables-nft-restore")
    ok(ps, "publish", "--backend", "iptables-nft", TARGET_IP, "28050:80")
    assert "PORTSCOPE" in ps.iptables_rules() and serves(ps.client, CLIENT_SIDE_IP, 28050)
    proc = ps.portscope("apply", *NFT)
    assert proc.returncode == 0 and "moved the bindings from iptables-nft to nftables" in proc.stderr, proc.stderr
    assert ps.iptables_rules() == "", "the iptables rules were left behind"
    assert serves(ps.client, CLIENT_SIDE_IP, 28050), "no traffic after the move"
    status = ps.portscope("status")  # auto: the stored backend
    assert status.returncode == 0 and "(nftables)" in status.stdout, status.stdout


def test_dry_run_prints_the_one_batch_and_changes_nothing(ps: NftHost) -> None:
    before, state_before = ps.ruleset(), ok(ps, "status", "--json")
    out = ok(ps, "publish", *NFT, "--dry-run", TARGET_IP, "28060:80")
    assert "# nft -f - (one transaction, both families)" in out
    assert "delete table ip portscope" in out and "ct original proto-dst 28060 accept" in out
    assert ps.ruleset() == before and ok(ps, "status", "--json") == state_before
