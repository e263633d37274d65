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


def test_publish_reads_every_chain_as_text_and_translates_rules_only_when_used() -> None:
    """`publish` reads Docker's table chain by chain as text too, and leaves the rules untranslated until its
    port's check uses them (core.publish.focus, core.publish.nft_docker): the tables are the same."""
    found = probe("docker29", "port")
    by_chain, whole = found["by_chain"], found["whole"]
    assert by_chain["tables"] == whole["tables"]
    assert by_chain["lines"] == by_chain["lines_reparsed"]
    assert {f for f, _ in by_chain["sources"]} == {"nft-text"}
    assert "nat-prerouting-and-output" in by_chain["pending"]  # Docker's DNATs, one port each
    assert any(name.startswith("filter-forward-in__") for name in by_chain["pending"])
    assert probe("docker29", "all")["by_chain"]["pending"] == []  # a whole read translates while nft prints


def test_a_rule_the_text_parser_cannot_translate_has_its_table_read_whole_as_json() -> None:
    found = probe("docker29", "all", "untranslatable")
    by_chain, whole = found["by_chain"], found["whole"]
    assert by_chain["tables"] == whole["tables"]
    assert by_chain["sources"] == whole["sources"]
    assert {f for f, _ in by_chain["sources"]} == {"nft-json"}
