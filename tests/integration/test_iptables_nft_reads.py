"""`list` reads iptables-nft's nat table with `iptables-nft -t nat -S`, and hands tables iptables-nft
cannot show (native nft chains or rules in them) to the nft reader, on every read path.

Each case is loaded with the real tools into a fresh network namespace.
"""

from __future__ import annotations

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
