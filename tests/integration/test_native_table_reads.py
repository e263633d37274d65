"""A whole read lists native nftables tables chain by chain, as text, side by side, and finds exactly what one
`nft -j list table` per table finds (core.rules.native_tables).

Each fixture ruleset (Docker 29's nftables layout with its verdict maps, Podman netavark's, a hand-made one with
named sets and maps, DNATs through maps) is loaded with nft into a fresh network namespace, and read there both
ways by tests/integration/native_read_probe.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_root_tools
from tests.sandbox.netns import netns

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "tests" / "fixtures" / "nft" / "src"
NFT = "/usr/sbin/nft"
FIXTURES = ["docker29", "netavark", "handmade", "dnatmaps"]


def probe(name: str, *args: str) -> dict[str, Any]:
    need_root_tools(NFT, "nsenter")
    with netns("psntr") as ns:
        ns.run([NFT, "-f", str(SOURCES / f"{name}.nft.in")])
        out = ns.run([sys.executable, "-m", "tests.integration.native_read_probe", *args], cwd=REPO).stdout
    return json.loads(out)


@pytest.mark.parametrize("name", FIXTURES)
def test_chain_by_chain_reads_what_the_whole_json_listing_reads(name: str) -> None:
    found = probe(name, "all")
    by_chain, whole = found["by_chain"], found["whole"]
    assert by_chain["tables"], "the fixture has native tables"
    assert by_chain["tables"] == whole["tables"]
    assert by_chain["backends"] == whole["backends"]
    assert {f for f, _ in whole["sources"]} == {"nft-json"}
    assert {f for f, _ in by_chain["sources"]} == {"nft-text"}, "every table was read chain by chain"
    assert len(by_chain["sources"]) == len(by_chain["tables"])
    # Kept as one text per table in nft's own layout, a capture parses back to the same tables.
    assert by_chain["reparsed"] == by_chain["tables"]
    assert by_chain["lines_reparsed"] == by_chain["lines"]
    assert all(line is not None for *_, line in by_chain["lines"])


@pytest.mark.parametrize("name", FIXTURES)
def test_a_read_for_one_port_reads_every_chain_as_text_and_translates_rules_only_when_used(name: str) -> None:
    """`publish` reads native tables chain by chain as text too, and leaves the rules untranslated until its
    port's check uses them (core.publish.focus, core.publish.nft_docker): the tables, and each rule's line in
    the table's text, are the same once translated."""
    found = probe(name, "port")
    by_chain, whole = found["by_chain"], found["whole"]
    assert by_chain["tables"] == whole["tables"]
    assert by_chain["lines"] == by_chain["lines_reparsed"]
    assert all(line is not None for *_, line in by_chain["lines"])
    assert {f for f, _ in by_chain["sources"]} == {"nft-text"}
    if name == "docker29":
        assert "nat-prerouting-and-output" in by_chain["pending"]  # Docker's DNATs, one port each
        assert any(chain.startswith("filter-forward-in__") for chain in by_chain["pending"])
        assert probe(name, "all")["by_chain"]["pending"] == []  # a whole read translates while nft prints


def test_a_read_for_one_port_checks_only_the_rules_whose_text_states_no_port() -> None:
    """A rule whose text states its port match is judged by it, as focus judges iptables lines: one the text
    parser cannot translate keeps the table as text in a read for one port, where a whole read lists it as
    JSON (below)."""
    found = probe("docker29", "port", "untranslatable")
    assert {f for f, _ in found["by_chain"]["sources"]} == {"nft-text"}


def test_a_rule_the_text_parser_cannot_translate_has_its_table_read_whole_as_json() -> None:
    found = probe("docker29", "all", "untranslatable")
    by_chain, whole = found["by_chain"], found["whole"]
    assert by_chain["tables"] == whole["tables"]
    assert by_chain["sources"] == whole["sources"]
    assert {f for f, _ in by_chain["sources"]} == {"nft-json"}


MARKS = {
    "meta mark 0x00000002 counter accept": "Mark(value=2, mask=None)",
    "meta mark & 0x00000003 == 0x00000002 counter accept": "Mark(value=2, mask=3)",
    "meta mark 0x00000002 ip saddr 10.0.0.0/8 accept": "None",  # more than the mark: not the daemon's rule
}


@pytest.mark.parametrize("rule", MARKS)
def test_docker_accept_mark_reads_the_same_from_nft_text_and_json(rule: str) -> None:
    """Docker's `bridge-accept-fwmark` rule as nft lists it in text and in JSON (the form read when publish lists
    Docker's table itself): the check finds the same mark in both."""
    need_root_tools(NFT, "nsenter")
    chain = "filter-forward-in__br0"
    ruleset = f"table ip docker-bridges {{\n\tchain {chain} {{\n\t\t{rule}\n\t\tcounter drop\n\t}}\n}}\n"
    code = (
        "import subprocess, sys\n"
        "from portscope.core.publish.nft_docker import accept_mark\n"
        "from portscope.core.rules.nft_json import parse_nft_json\n"
        "from portscope.core.rules.nft_text import parse_nft_text\n"
        f"argv = [{NFT!r}, 'list', 'table', 'ip', 'docker-bridges']\n"
        "text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout\n"
        "doc = subprocess.run([argv[0], '-j', *argv[1:]], capture_output=True, text=True, check=True).stdout\n"
        "marks = accept_mark(parse_nft_text(text, lazy=True)[0]), accept_mark(parse_nft_json(doc, lazy=True)[0])\n"
        "print(*marks, sep='|')\n"
    )
    with netns("psntm") as ns:
        ns.run([NFT, "-f", "-"], input=ruleset)
        out = ns.run([sys.executable, "-c", code], cwd=REPO).stdout.strip().split("|")
    assert out == [MARKS[rule], MARKS[rule]]
