"""`list --rules` keeps only the rules bindings come from, still checks every line, and parses in memory
proportional to its input (issue 11: a 50 MB dump took 3.2 GB)."""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from pathlib import Path

import pytest

from portscope.cli.sources import load_snapshot
from portscope.core.errors import ParseError
from portscope.core.inventory import build_inventory
from portscope.core.model import Snapshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "iptables"
SAVES = sorted(p.name for p in FIXTURES.iterdir())


def read(paths: list[str], scope: str) -> Snapshot:
    return load_snapshot(argparse.Namespace(snapshot=None, rules=paths), scope=scope)


def docker_dump(ports: int) -> str:
    """A Docker-shaped iptables-save dump: a DNAT, a hairpin MASQUERADE and a filter ACCEPT per port."""
    nat, post, filt = [], [], []
    for i in range(ports):
        ip = f"172.{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
        nat.append(f"-A DOCKER ! -i docker0 -p tcp -m tcp --dport {1024 + i} -j DNAT --to-destination {ip}:80")
        post.append(f"-A POSTROUTING -s {ip}/32 -d {ip}/32 -p tcp -m tcp --dport 80 -j MASQUERADE")
        filt.append(f"-A DOCKER -d {ip}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT")
    head = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n"
    head += "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
    body = "\n".join([*post, *nat]) + "\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n"
    return head + body + "-A FORWARD -o docker0 -j DOCKER\n" + "\n".join(filt) + "\nCOMMIT\n"


@pytest.mark.parametrize("name", SAVES)
def test_nat_only_read_finds_the_same_bindings(name: str) -> None:
    path = [str(FIXTURES / name)]
    lean, full = read(path, "nat"), read(path, "all")
    assert [b.id for b in build_inventory(lean, catches=False).bindings] == [
        b.id for b in build_inventory(full, catches=False).bindings
    ]
    assert lean.backends[0].rules == full.backends[0].rules  # the count still covers every rule line


def test_a_bad_line_outside_nat_is_still_refused(tmp_path: Path) -> None:
    dump = tmp_path / "d.save"
    dump.write_text(docker_dump(3).replace("-A DOCKER -d 172.16.0.0/32", "-A DOCKER -d \uff11\uff17\uff12.16.0.0/32"))
    with pytest.raises(ParseError, match=r"d\.save:\d+: not an address or prefix"):
        read([str(dump)], "nat")


def test_a_dump_is_read_in_memory_proportional_to_its_size(tmp_path: Path) -> None:
    dump = tmp_path / "big.save"
    dump.write_text(docker_dump(20_000))
    size = dump.stat().st_size
    gc.collect()
    tracemalloc.start()
    try:
        snap = read([str(dump)], "nat")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(c.size for t in snap.tables for c in t.chains.values()) == 20_001  # the PREROUTING jump and the DNATs
    assert peak < 6 * size, f"reading a {size >> 20} MB dump took {peak >> 20} MB"


def _resolve_peak(tmp_path: Path, ports: int) -> int:
    """Bytes allocated at the peak of `build_inventory` (rules already parsed) for a dump of `ports`."""
    dump = tmp_path / f"{ports}.save"
    dump.write_text(docker_dump(ports))
    snap = read([str(dump)], "nat")
    assert sum(len(c.rules) for t in snap.tables for c in t.chains.values()) == ports + 1
    gc.collect()
    tracemalloc.start()
    try:
        inv = build_inventory(snap, catches=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(inv.bindings) == ports
    return peak


def test_first_match_resolution_takes_memory_in_proportion_to_the_rules(tmp_path: Path) -> None:
    """Issue 11: one port's mask is as long as the number of ports, so keeping one per DNAT grew as N²
    (5,000 -> 10,000 ports took 2.8 times the memory); kept packed, twice the rules take twice the memory."""
    small, large = _resolve_peak(tmp_path, 5_000), _resolve_peak(tmp_path, 10_000)
    assert large < 2.4 * small, f"5,000 ports: {small >> 20} MB, 10,000 ports: {large >> 20} MB"
