"""`portscope list`'s table: a REACH column only when some DNAT is not reached from everywhere."""

from __future__ import annotations

import io
import os

from rich.console import Console

from cli.render_table import print_bindings
from core.inventory import build_inventory
from core.resolve import resolve
from core.rules.iptables_text import parse_iptables_text
from core.snapshot import read_capture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _table(bindings) -> list[str]:
    out = io.StringIO()
    print_bindings(bindings, Console(file=out, width=200, color_system=None))
    return out.getvalue().splitlines()


def _row(lines: list[str], host: str) -> str:
    return next(line for line in lines if f"│ {host} " in line)


def test_reach_column_shows_restricted_and_uncertain_bindings() -> None:
    with open(os.path.join(ROOT, "tests", "fixtures", "iptables", "nft-v4.save"), encoding="utf-8") as f:
        bindings = resolve(parse_iptables_text(f.read())).bindings
    lines = _table(bindings)
    assert "REACH" in lines[2]
    by_port = {b.host_port: b for b in bindings}
    assert by_port[9000].reach.summary() == "not from docker0"  # `DOCKER -i docker0 -j RETURN` comes first
    assert "│ not from docker0" in _row(lines, "127.0.0.1:9000/tcp")
    assert "│ uncertain" in _row(lines, "0.0.0.0:4000/tcp")  # `-m statistic`: portscope cannot tell
    assert _row(lines, "0.0.0.0:3128/tcp").rstrip(" │").endswith("dnat")  # from everywhere: blank


def test_no_reach_column_when_every_binding_is_reached_from_everywhere() -> None:
    snap = read_capture(os.path.join(ROOT, "examples", "sample.json"))
    lines = _table(build_inventory(snap, catches=False).bindings)
    assert "CARRIED BY" in lines[2] and "REACH" not in lines[2]
