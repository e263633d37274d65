"""Rich tables for people (imported only when a table is printed)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.render_json import _addr, _range
from core.model import Binding


def _host(b: Binding) -> str:
    port = "*" if b.host_port is None else _range(b.host_port, b.host_port_last)
    return f"{_addr(b.host_ip)}:{port}/{b.protocol}"


def _target(b: Binding) -> str:
    port = "*" if b.target_port is None else _range(b.target_port, b.target_port_last)
    return f"{_addr(b.target_ip)}:{port}" if b.target_ip else "?"


def print_bindings(bindings: list[Binding], console: Console) -> None:
    table = Table(title=f"{len(bindings)} published port(s)", title_justify="left", header_style="bold")
    for name in ("HOST", "FAMILY", "TARGET", "CONTAINER", "OWNER", "CARRIED BY"):
        table.add_column(name, overflow="fold")
    for b in bindings:
        carried = "+".join(b.carriers) or "[red]nothing[/]"
        cells = (_host(b), b.family, _target(b), b.container_name or "-", b.owner)
        table.add_row(*(escape(c) for c in cells), carried)
    console.print(table)
