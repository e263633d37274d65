"""Rich tables for people (imported only when a table is printed)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.findings import Finding
from core.model import Binding, bracket, port_text


def _host(b: Binding) -> str:
    return f"{bracket(b.host_ip)}:{port_text(b.host_port, b.host_port_last)}/{b.protocol}"


def _target(b: Binding) -> str:
    port = port_text(b.target_port, b.target_port_last)
    return f"{bracket(b.target_ip)}:{port}" if b.target_ip else "?"


def _reach(b: Binding) -> str:
    """Rich markup for where the DNAT is reached from: blank from everywhere (or with no DNAT), else the summary."""
    reach = b.reach
    if reach is None:
        return ""
    text = escape(reach.summary()) if reach.restricted else ""
    if reach.certain:
        return text
    return f"[yellow](uncertain)[/] {text}" if text else "[yellow]uncertain[/]"


def print_bindings(bindings: list[Binding], console: Console) -> None:
    table = Table(title=f"{len(bindings)} published port(s)", title_justify="left", header_style="bold")
    reaches = [_reach(b) for b in bindings]
    limited = any(reaches)  # a REACH column only when some DNAT is not reached from everywhere
    for name in ("HOST", "FAMILY", "TARGET", "CONTAINER", "OWNER", "CARRIED BY"):
        table.add_column(name, overflow="fold")
    if limited:
        table.add_column("REACH", overflow="fold", max_width=32)
    for b, reach in zip(bindings, reaches, strict=True):
        carried = "+".join(b.carriers) or "[red]nothing[/]"
        cells = (_host(b), b.family, _target(b), b.container_name or "-", b.owner)
        table.add_row(*(escape(c) for c in cells), carried, *([reach] if limited else []))
    console.print(table)


_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_findings(findings: list[Finding], console: Console) -> None:
    if not findings:
        console.print("[green]no findings[/]: every published port looks healthy")
        return
    for f in findings:
        console.print(f"[{_STYLE[f.severity]}]{f.severity.upper():7}[/] [bold]{escape(f.title)}[/]  [dim]({f.kind})[/]")
        console.print(f"        {escape(f.explanation)}", soft_wrap=False)
        for r in f.rules:
            console.print(f"        [dim]{r.backend} {r.family} {r.table}/{r.chain} #{r.position}:[/] {escape(r.text)}")
        for s in f.processes:
            console.print(f"        [dim]pid {s.pid}:[/] {escape(' '.join(s.cmdline) or str(s.process))}")
        console.print(f"        [green]fix:[/] {escape(f.fix)}")
        console.print()
