"""`list` reads iptables-nft's nat table with `iptables-nft -t nat -S`, a whole read each table with
`iptables-nft -t TABLE -S` (what `iptables-nft-save` gives), and both hand tables iptables-nft cannot show
(native nft chains or rules in them) to the nft reader, on every read path.

Each case is loaded with the real tools into a fresh network namespace.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.sandbox.list_cli import binding_summary, portscope, portscope_json
from tests.sandbox.netns import add_host_address, netns

NFT = "/usr/sbin/nft"
TOOLS = (NFT, "iptables-nft", "iptables-nft-restore", "ip6tables-nft-restore", "iptables-nft-save", "nsenter")

#: Docker-shaped rules in both families and both tables, with the parser's awkward cases.
DOCKER_V4 = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.17.0.3:80
-A DOCKER ! -i docker0 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.17.0.4:53
-A DOCKER -p tcp --dport 8000:8010 -m comment --comment "a \\"q\\" r" -j DNAT --to-destination 172.17.0.5:8000-8010
-A DOCKER ! -i docker0 -p tcp -m multiport --dports 7000,7001 -j DNAT --to-destination 172.17.0.6
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
-A FORWARD -o docker0 -j DOCKER
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""
DOCKER_V6 = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00::2]:80
COMMIT
"""
#: What a hand-written /etc/nftables.conf often holds: a native `ip nat` table (lowercase base chains).
NATIVE_IP_NAT = """table ip nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        tcp dport 8080 dnat to 10.0.0.5:80
        fib daddr type local tcp dport { 81, 82 } dnat to 10.0.0.6:80
    }
}
"""


def _ids(doc: dict) -> set[str]:
    return {b["id"] for b in doc["bindings"]}


def _status(doc: dict, backend: str, family: str | None) -> dict:
    return next(b for b in doc["backends"] if b["backend"] == backend and b["family"] == family)


def test_the_nat_table_read_gives_what_the_whole_save_gives(tmp_path: Path) -> None:
    need_root_tools(*TOOLS)
    with netns("psipt") as ns:
        add_host_address(ns)
        ns.run(["iptables-nft-restore"], input=DOCKER_V4)
        ns.run(["ip6tables-nft-restore"], input=DOCKER_V6)
        live = portscope_json(ns, "list", "--json")
        dump = tmp_path / "save.txt"
        dump.write_text(ns.run(["iptables-nft-save"]).stdout + ns.run(["ip6tables-nft-save"]).stdout)
        capture = tmp_path / "capture.json"
        portscope(ns, "capture", "-o", str(capture))
    whole = portscope_json(None, "list", "--json", "--rules", str(dump))
    captured = portscope_json(None, "list", "--json", "--snapshot", str(capture))
    assert len(live["bindings"]) == 7  # 8080, 9000, 5353/udp, 8000-8010, 7000, 7001, and [::]:8080
    assert binding_summary(live) == binding_summary(whole) == binding_summary(captured)
    for family in ("ipv4", "ipv6"):
        status = _status(live, "iptables-nft", family)
        assert status["read"] is True
        assert status["reason"] == "read: the nat table, where published ports are"
    assert _status(live, "iptables-nft", "ipv4")["rules"] == 9  # the nat table's 9 rules; filter is not read


def test_a_native_ip_nat_table_is_read_with_nft_not_taken_for_iptables(tmp_path: Path) -> None:
    """iptables-nft prints `# Table `nat' contains incompatible base-chains` and an empty *nat: not a shell to trust."""
    need_root_tools(*TOOLS)
    with netns("psipt") as ns:
        ns.run([NFT, "-f", "-"], input=NATIVE_IP_NAT)
        assert "incompatible" in ns.run(["iptables-nft-save"]).stdout
        live = portscope_json(ns, "list", "--json")
        capture = tmp_path / "capture.json"
        portscope(ns, "capture", "-o", str(capture))
    expected = {
        "ipv4/tcp/0.0.0.0:8080->10.0.0.5:80",
        "ipv4/tcp/0.0.0.0:81->10.0.0.6:80",
        "ipv4/tcp/0.0.0.0:82->10.0.0.6:80",
    }
    assert _ids(live) == expected
    assert _ids(portscope_json(None, "list", "--json", "--snapshot", str(capture))) == expected
    assert "cannot show its nat table" in _status(live, "iptables-nft", "ipv4")["reason"]


def test_native_rules_inside_iptables_nfts_own_table_are_still_read() -> None:
    """With an nft-only rule in it, `iptables-nft -t nat -S` refuses the whole table; nft reads it instead."""
    need_root_tools(*TOOLS)
    with netns("psipt") as ns:
        add_host_address(ns)
        ns.run(["iptables-nft-restore"], input=DOCKER_V4)
        ns.run([NFT, "add", "rule", "ip", "nat", "DOCKER", "tcp", "dport", "{ 81, 82 }", "dnat", "to", "10.0.0.6:80"])
        refused = ns.run(["iptables-nft", "-t", "nat", "-S"], check=False)
        assert refused.returncode != 0 and "incompatible" in refused.stderr
        live = portscope_json(ns, "list", "--json")
    ids = _ids(live)
    assert {"ipv4/tcp/0.0.0.0:81->10.0.0.6:80", "ipv4/tcp/0.0.0.0:82->10.0.0.6:80"} <= ids
    assert "ipv4/tcp/0.0.0.0:8080->172.17.0.2:80" in ids  # the iptables-shaped rules, now through nft
    status = _status(live, "iptables-nft", "ipv4")
    assert status["read"] is True and "cannot show its nat table" in status["reason"]
    assert not any("iptables-nft" in w for w in live["warnings"])


@pytest.mark.parametrize(("command", "key"), [("list", "bindings"), ("conflicts", "findings")])
def test_no_iptables_rules_at_all_reads_cleanly(command: str, key: str) -> None:
    """A namespace with no tables: `-S` prints the built-in policies only, and no table is created."""
    need_root_tools(*TOOLS)
    with netns("psipt") as ns:
        doc = portscope_json(ns, command, "--json")
        assert ns.run([NFT, "list", "tables"]).stdout.strip() == ""
    assert doc[key] == []
    assert doc["warnings"] == []


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Run inside the namespace: read every rule table by table and with the save tools; summarise both.
BOTH_READS = """
import json
import portscope.core.rules.live as live
from portscope.core.rules.formats import parse_source

def rules(tables):
    return sorted([t.backend, t.family, t.name, c.name, c.hook, c.policy, r.position, r.text, repr(r.matches)]
                  for t in tables for c in t.chains.values() for r in c.rules)

def chains(tables):
    return sorted([t.backend, t.family, t.name, c.name, c.hook, c.policy] for t in tables for c in t.chains.values())

def summary(read):
    again = [t for s in read.sources if s.format == "iptables-save" for t in parse_source(s)]
    return {"rules": rules(read.tables), "chains": chains(read.tables),
            "status": [[b.backend, b.family, b.read, b.rules, b.reason] for b in read.backends],
            "origins": [s.origin.split("/")[-1] for s in read.sources],
            "again": rules([t for t in again if t.backend == "iptables-nft"])}

by_table = live.read_rules(scope="all")
whole = live.read_rules(scope="all", tools=live.RuleTools(generation=None))
print(json.dumps({"by_table": summary(by_table), "whole": summary(whole)}))
"""
#: Rules in the other tables too, so that every table iptables knows is read.
OTHER_TABLES = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 5353 -j NOTRACK
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:MARKS - [0:0]
-A PREROUTING -j MARKS
-A MARKS -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x1/0xffffffff
COMMIT
"""


def _both_reads(ns) -> dict:
    result = ns.run([sys.executable, "-c", BOTH_READS], cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_read_table_by_table_gives_what_iptables_nft_save_gives() -> None:
    """Each table's `-S` runs at once and is kept as iptables-save prints it: the same rules, chains and
    statuses as the save tools give, and a capture of its sources parses to the same rules again."""
    need_root_tools(*TOOLS)
    with netns("psipt") as ns:
        ns.run(["iptables-nft-restore"], input=DOCKER_V4)
        ns.run(["iptables-nft-restore", "--noflush"], input=OTHER_TABLES)
        ns.run(["ip6tables-nft-restore"], input=DOCKER_V6)
        doc = _both_reads(ns)
    by_table, whole = doc["by_table"], doc["whole"]
    assert len(by_table["rules"]) == 17  # IPv4: 9 nat, 2 filter, 1 raw, 2 mangle; IPv6: 3 nat
    assert by_table["rules"] == whole["rules"] and by_table["chains"] == whole["chains"]
    assert by_table["status"] == whole["status"]
    assert by_table["again"] == by_table["rules"]
    assert sorted(by_table["origins"]) == sorted(
        f"{tool} -t {table} -S" for tool, tables in (("iptables-nft", ("raw", "mangle", "nat", "filter")),
                                                     ("ip6tables-nft", ("nat",))) for table in tables
    )  # fmt: skip
    assert sorted(whole["origins"]) == ["ip6tables-nft-save", "iptables-nft-save"]


def test_a_table_iptables_nft_cannot_show_is_left_to_nft_by_both_reads() -> None:
    """A native rule in `ip nat`: `-S` of that table refuses, the others are read; the save tool says the same."""
    need_root_tools(*TOOLS)
    with netns("psipt") as ns:
        ns.run(["iptables-nft-restore"], input=DOCKER_V4)
        ns.run([NFT, "add", "rule", "ip", "nat", "DOCKER", "tcp", "dport", "{ 81, 82 }", "dnat", "to", "10.0.0.6:80"])
        doc = _both_reads(ns)
    by_table, whole = doc["by_table"], doc["whole"]
    assert by_table["rules"] == whole["rules"] and by_table["status"] == whole["status"]
    iptables_nft = [rule for rule in by_table["rules"] if rule[0] == "iptables-nft"]
    assert {rule[2] for rule in iptables_nft} == {"filter"}  # nat is nft's to read
    assert any(rule[0] == "nftables" and "dport { 81, 82 }" in rule[7] for rule in by_table["rules"])


#: Run inside the namespace: a table created after `nft list chains` named the tables, before the rest is read.
RACE = """
import json, subprocess, sys
import portscope.core.rules.live as live
from portscope.core.tools import run_all

stages = []
every = sys.argv[1] == "every"  # a change after every listing, not only after the first

def racing(commands, timeout=10.0, readers=None):
    results = run_all(commands, timeout, readers)
    if commands[0][1:] == ["list", "chains"] and (every or not stages):  # as a daemon starting up would
        port = str(5353 + len(stages))
        subprocess.run(["iptables-nft", "-t", "raw", "-A", "PREROUTING", "-p", "udp", "--dport", port,
                        "-j", "NOTRACK"], check=True)
    stages.append([" ".join([c[0].split("/")[-1], *c[1:]]) for c in commands])
    return results

read = live.read_rules(scope="all", tools=live.RuleTools(run_all=racing))
print(json.dumps({"stages": stages, "origins": [s.origin.split("/")[-1] for s in read.sources],
                  "tables": sorted(t.name for t in read.tables if t.backend == "iptables-nft"),
                  "raw": sum(len(c.rules) for t in read.tables if t.name == "raw" for c in t.chains.values())}))
"""


def race(when: str) -> dict:
    need_root_tools(*TOOLS)
    with netns("psipt") as ns:
        ns.run(["iptables-nft-restore"], input=DOCKER_V4)
        result = ns.run([sys.executable, "-c", RACE, when], cwd=ROOT, check=False)
        raw = ns.run(["iptables-nft", "-t", "raw", "-S", "PREROUTING"]).stdout.count("-A PREROUTING")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tables"] == ["filter", "nat", "raw"]
    assert doc["raw"] == raw  # every rule made before the read's last stage
    return doc


def test_a_table_made_during_the_read_is_not_missed() -> None:
    """The generation moved between the listing and the tables' `-S`: the tables are listed and read again."""
    doc = race("first")
    assert doc["stages"][0] == ["nft list chains"]  # the listing alone, then the tables it named
    assert "iptables-nft -t nat -S" in doc["stages"][1] and "iptables-nft -t raw -S" not in doc["stages"][1]
    assert doc["stages"][2] == ["nft list chains"]  # the generation moved: listed again, then read side by side
    assert "iptables-nft -t raw -S" in doc["stages"][3] and len(doc["stages"]) == 4
    assert "iptables-nft -t raw -S" in doc["origins"]


def test_tables_that_keep_changing_are_read_in_one_go() -> None:
    """The generation moved during every read side by side: after the last try, the save tools read everything."""
    doc = race("every")
    assert [stage for stage in doc["stages"] if stage == ["nft list chains"]] == [["nft list chains"]] * 3
    assert "iptables-nft-save" in doc["stages"][-1]
    assert "iptables-nft-save" in doc["origins"]
