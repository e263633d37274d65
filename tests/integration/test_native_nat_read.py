"""`list` reads native nftables chain by chain (core.rules.native_nat), and finds what a whole read finds.

Each fixture ruleset (Docker 29's nftables layout, Podman netavark's, and a hand-made one with named
sets and verdict maps) is loaded into a fresh network namespace; `portscope list --json` there
(which reads only the nat chains reached from prerouting/output) must list exactly the bindings
that `portscope list --json --rules` gives for the whole ruleset as nft printed it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.sandbox.list_cli import binding_summary, portscope_json
from tests.sandbox.netns import add_host_address, netns

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "tests" / "fixtures" / "nft" / "src"
NFT = "/usr/sbin/nft"


@pytest.mark.parametrize("name", ["docker29", "netavark", "handmade"])
def test_chain_by_chain_read_lists_what_the_whole_ruleset_gives(name: str, tmp_path: Path) -> None:
    need_root_tools(NFT, "ip", "nsenter")
    with netns("psnat") as ns:
        add_host_address(ns)
        ns.run([NFT, "-f", str(SOURCES / f"{name}.nft.in")])
        live = portscope_json(ns, "list", "--json")
        dump = tmp_path / "ruleset.json"
        dump.write_text(ns.run([NFT, "-j", "list", "ruleset"]).stdout)
    whole = portscope_json(None, "list", "--json", "--rules", str(dump))
    assert live["bindings"], "the fixture publishes ports"
    assert binding_summary(live) == binding_summary(whole)
    status = next(b for b in live["backends"] if b["backend"] == "nftables")
    assert status["read"] is True and status["rules"] > 0
    # handmade's DNAT chains use named sets and maps, whose elements only a whole-table listing has:
    # that table is read whole (no "nat chains only" note); the engines' layouts are read chain by chain.
    chain_by_chain = status["reason"] == "read: the nat chains that packets to this host go through"
    assert chain_by_chain is (name != "handmade")
