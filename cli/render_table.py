"""Rich tables for people (imported only when a table is printed).

Host text (chain names, rule text, comments, container and process names, the findings that quote
them) is never Rich markup: it goes in as `Text` (`_text`), with its control characters made visible.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from core.findings import Finding
from core.model import Binding, bracket, port_text
from core.printable import printable


def _text(text: object, style: str = "") -> Text:
    """Host text as it is: `[/x]` stays `[/x]` (no markup parsing), ESC shows as `␛`."""
    return Text(printable(text), style=style)


def _host(b: Binding) -> str:
    return f"{bracket(b.host_ip)}:{port_text(b.host_port, b.host_port_last)}/{b.protocol}"


def _target(b: Binding) -> str:
    port = port_text(b.target_port, b.target_port_last)
    return f"{bracket(b.target_ip)}:{port}" if b.target_ip else "?"


def _reach(b: Binding) -> Text:
    """Where the DNAT is reached from: blank from everywhere (or with no DNAT), else the summary."""
    reach = b.reach
    if reach is None:
        return Text()
    text = _text(reach.summary()) if reach.restricted else Text()
    if reach.certain:
        return text
    return Text.assemble(("(uncertain) ", "yellow"), text) if text else Text("uncertain", style="yellow")


#: Above this many bindings `list` prints plain aligned columns: a Rich table of 60,000 rows takes minutes.
LARGE = 2000
_HEADINGS = ("HOST", "FAMILY", "TARGET", "CONTAINER", "OWNER", "CARRIED BY")


def print_bindings(bindings: list[Binding], console: Console) -> None:
    if len(bindings) > LARGE:
        print_columns(bindings, console)
        return
    table = Table(title=f"{len(bindings)} published port(s)", title_justify="left", header_style="bold")
    reaches = [_reach(b) for b in bindings]
    limited = any(reaches)  # a REACH column only when some DNAT is not reached from everywhere
    for name in _HEADINGS:
        table.add_column(name, overflow="fold")
    if limited:
        table.add_column("REACH", overflow="fold", max_width=32)
    for b, reach in zip(bindings, reaches, strict=True):
        carried = _text("+".join(b.carriers)) if b.carriers else Text("nothing", style="red")
        cells = (_host(b), b.family, _target(b), b.container_name or "-", b.owner)
        table.add_row(*(_text(c) for c in cells), carried, *([reach] if limited else []))
    console.print(table)


def _plain_reach(b: Binding) -> str:
    reach = b.reach
    if reach is None:
        return ""
    text = reach.summary() if reach.restricted else ""
    return text if reach.certain else (f"(uncertain) {text}" if text else "uncertain")


def print_columns(bindings: list[Binding], console: Console) -> None:
    """The table's columns as plain text, aligned, one line per binding: linear and fast at any size."""
    rows = [
        [
            printable(cell)
            for cell in (_host(b), b.family, _target(b), b.container_name or "-", b.owner,
                         "+".join(b.carriers) or "nothing", _plain_reach(b))
        ]
        for b in bindings
    ]  # fmt: skip
    headings = [*_HEADINGS, "REACH"] if any(r[-1] for r in rows) else list(_HEADINGS)
    widths = [max(cell_len(h), max(cell_len(r[i]) for r in rows)) for i, h in enumerate(headings)]
    write = console.file.write
    write(f"{len(bindings)} published port(s)\n")
    for cells in (headings, *rows):
        padded = (c + " " * (w - cell_len(c)) for c, w in zip(cells[: len(widths)], widths, strict=True))
        write("  ".join(padded).rstrip() + "\n")


_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_findings(findings: list[Finding], console: Console) -> None:
    if not findings:
        console.print("[green]no findings[/]: every published port looks healthy")
        return
    indent = " " * 8
    for f in findings:
        head = (f"{f.severity.upper():7}", _STYLE.get(f.severity, ""))
        console.print(Text.assemble(_text(*head), " ", _text(f.title, "bold"), "  ", _text(f"({f.kind})", "dim")))
        console.print(Text.assemble(indent, _text(f.explanation)), soft_wrap=False)
        for r in f.rules:
            where = _text(f"{r.backend} {r.family} {r.table}/{r.chain} #{r.position}:", "dim")
            console.print(Text.assemble(indent, where, " ", _text(r.text)))
        for s in f.processes:
            command = " ".join(s.cmdline) or str(s.process)
            console.print(Text.assemble(indent, _text(f"pid {s.pid}:", "dim"), " ", _text(command)))
        console.print(Text.assemble(indent, ("fix:", "green"), " ", _text(f.fix)))
        console.print()
