"""`portscope list`'s table: a REACH column only when some DNAT is not reached from everywhere."""

from __future__ import annotations

import io
import os

from rich.console import Console

from portscope.cli.render_table import print_bindings
from portscope.core.inventory import build_inventory
from portscope.core.resolve import resolve
from portscope.core.rules.iptables_text import parse_iptables_text
from portscope.core.snapshot import read_capture

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


def test_a_large_list_is_printed_as_plain_columns_with_host_text_shown() -> None:
    """Above `LARGE` bindings a Rich table takes minutes (60,000: 134 s); plain columns take a second."""
    from portscope.cli.render_table import LARGE

    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":DOCKER - [0:0]", "-A PREROUTING -j DOCKER"]
    lines += [f"-A DOCKER -p tcp -m tcp --dport {1024 + n} -m comment --comment x -j DNAT "
              f"--to-destination 172.17.{n // 200}.{n % 200 + 2}:80" for n in range(LARGE + 1)]  # fmt: skip
    bindings = resolve(parse_iptables_text("\n".join([*lines, "COMMIT", ""]))).bindings
    bindings[0].container_name = "\x1b]0;title\x07[/x]"
    table = _table(bindings)
    assert table[0] == f"{LARGE + 1} published port(s)"
    assert table[1].split() == ["HOST", "FAMILY", "TARGET", "CONTAINER", "OWNER", "CARRIED", "BY"]
    assert len(table) == LARGE + 3
    first = next(line for line in table if line.startswith("0.0.0.0:1024/tcp "))
    assert first.split() == ["0.0.0.0:1024/tcp", "ipv4", "172.17.0.2:80", "␛]0;title␇[/x]", "docker", "dnat"]
    assert {line.index(" ipv4 ") + 1 for line in table[2:]} == {table[1].index("FAMILY")}  # aligned
