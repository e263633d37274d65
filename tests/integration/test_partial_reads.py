"""After a change, the live view reads again only the nf_tables tables the kernel's notices named (iptables-nft's
tables one `-S` each, native tables chain by chain), takes every other table from its last read, and so holds
exactly what a fresh full read holds.

A native table whose only changes were rules is listed again only in the chains they were in.
A reader follows the notices in a fresh namespace (tests/integration/partial_read_probe.py) while tables are
changed, created and deleted there with iptables-nft, ip6tables-nft and nft.
"""

from __future__ import annotations

import json
import sys

from tests.conftest import need_root_tools
from tests.sandbox.engine import REPO_ROOT
from tests.sandbox.line_driver import LineDriver
from tests.sandbox.netns import netns

NATIVE = """table ip pstnative {
\tset blocked { type ipv4_addr; elements = { 10.9.9.9 }; }
\tchain pre { type nat hook prerouting priority dstnat; policy accept; ip saddr @blocked return; jump published; }
\tchain published { tcp dport 8080 dnat to 10.0.0.5:80; }
}
table inet pstother {
\tchain forward_in { type filter hook forward priority filter; policy accept; tcp dport 22 accept; }
}
"""
DNAT = ["-p", "tcp", "--dport", "18081", "-j", "DNAT", "--to-destination", "172.17.0.250:80"]
DNAT6 = ["-p", "tcp", "--dport", "18081", "-j", "DNAT", "--to-destination", "[fd00::250]:80"]
ACCEPT = ["-p", "tcp", "--dport", "22", "-j", "ACCEPT"]


def test_only_the_tables_a_change_named_are_read_again() -> None:
    need_root_tools("nft", "iptables-nft", "ip6tables-nft", "nsenter")
    with netns("pspart") as ns:
        ns.run(["iptables-nft", "-t", "nat", "-A", "PREROUTING", *DNAT])
        ns.run(["iptables-nft", "-t", "filter", "-A", "INPUT", *ACCEPT])
        ns.run(["ip6tables-nft", "-t", "nat", "-A", "PREROUTING", *DNAT6])
        ns.run(["nft", "-f", "-"], input=NATIVE)
        probe = LineDriver(
            ns.argv([sys.executable, "-m", "tests.integration.partial_read_probe"]),
            cwd=REPO_ROOT,
            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            bound=60.0,
        )
        try:
            assert probe.answer() == "ready"
            every = {"ip/nat", "ip/filter", "ip6/nat", "ip/pstnative", "inet/pstother"}

            listed: dict[str, list[str]] = {}

            def read_after(*changes: list[str]) -> set[str]:
                for change in changes:
                    ns.run(change[1:], input=change[0] or None)
                answer = json.loads(probe.ask("read"))
                assert (answer["same"], answer["built_on"]) == (True, True), changes
                listed.clear()
                listed.update(answer["listed"])
                return set(answer["kept"])

            # What changed before the reader followed the notices is not known: the first read reads every table.
            assert read_after(["", "iptables-nft", "-t", "nat", "-A", "PREROUTING", *DNAT]) == set()
            assert read_after(["", "iptables-nft", "-t", "nat", "-I", "PREROUTING", "1", *DNAT]) == every - {"ip/nat"}
            # A rule added to a native chain: only that chain is listed again.
            assert read_after(["", "nft", "add", "rule", "ip", "pstnative", "published", "tcp", "dport", "9090",
                               "dnat", "to", "10.0.0.6:80"]) == every - {"ip/pstnative"}  # fmt: skip
            assert listed == {"ip/pstnative": ["published"]}
            # One inserted in the first chain, naming the set: the chain after it keeps its rules, a line further on.
            assert read_after(["", "nft", "insert", "rule", "ip", "pstnative", "pre", "ip", "daddr", "@blocked",
                               "return"]) == every - {"ip/pstnative"}  # fmt: skip
            assert listed == {"ip/pstnative": ["pre"]}
            assert read_after(["", "nft", "add", "element", "ip", "pstnative", "blocked", "{ 10.8.8.8 }"]) == every - {
                "ip/pstnative"
            }
            assert listed == {"ip/pstnative": ["pre", "published"]}  # a set changed: every chain is listed again
            assert read_after(
                ["", "ip6tables-nft", "-t", "nat", "-D", "PREROUTING", *DNAT6],
                ["", "iptables-nft", "-t", "filter", "-A", "FORWARD", *ACCEPT],
            ) == every - {"ip6/nat", "ip/filter"}
            assert (
                read_after(["table ip pstnew {\n\tchain extra {\n\t\ttcp dport 1 accept\n\t}\n}\n", "nft", "-f", "-"])
                == every
            )
            every = every - {"inet/pstother"} | {"ip/pstnew"}
            assert read_after(["", "nft", "delete", "table", "inet", "pstother"]) == every
            assert read_after() == every  # nothing changed: nothing is listed
            # The safety net, a read of everything, lists every table again, whatever the notices said.
            answer = json.loads(probe.ask("read all"))
            assert (answer["same"], answer["built_on"]) == (True, False)
        finally:
            probe.close()
