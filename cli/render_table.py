"""Rich tables for people (imported only when a table is printed).

Host text (chain names, rule text, comments, container and process names, the findings that quote
them) is never Rich markup: it goes in as `Text` (`_text`), with its control characters made visible.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from portscope.core.findings import Finding
from portscope.core.model import Binding, bracket, port_text
from portscope.core.printable import printable


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
#: The TUI's marks for a binding's worst finding.
SEVERITY_MARK: dict[str, tuple[str, str]] = {
    "error": ("✖", "bold red"),
    "warning": ("▲", "yellow"),
    "info": ("●", "cyan"),
}
#: Columns a narrow terminal drops first, in this order (the address form already shows the family).
_DROP_ORDER = ("FAMILY", "OWNER", "CARRIED BY")
#: Columns that are never split (addresses, ports, marks); the others fold, down to this width.
_TOKENS = frozenset(("!", "HOST", "TARGET", "FAMILY"))
_FOLD_MIN = 12


def _mark(severity: str | None) -> Text:
    if severity is None:
        return Text()
    mark, style = SEVERITY_MARK[severity]
    return Text(mark, style=style)


def _fits(columns: dict[str, list[Text]], width: int) -> bool:
    """Whether `columns` fit `width` cells with the token columns whole (box edges: 3 per column + 1)."""
    need = 3 * len(columns) + 1
    for name, cells in columns.items():
        natural = max(cell_len(name), *(c.cell_len for c in cells)) if cells else cell_len(name)
        need += natural if name in _TOKENS else min(natural, max(_FOLD_MIN, cell_len(name)))
    return need <= width


def print_bindings(
    bindings: list[Binding], console: Console, marks: dict[str, str | None] | None = None, wide: bool = False
) -> None:
    """`marks`: binding id -> its worst finding's severity (a `!` column when any); `wide`: every column.

    Addresses and ports are never split: a narrow terminal loses FAMILY, OWNER, CARRIED BY in that order,
    and CONTAINER and REACH fold."""
    if len(bindings) > LARGE:
        print_columns(bindings, console, marks)
        return
    table = Table(title=f"{len(bindings)} published port(s)", title_justify="left", header_style="bold")
    reaches = [_reach(b) for b in bindings]
    columns: dict[str, list[Text]] = {}
    if marks and any(b.id in marks for b in bindings):
        columns["!"] = [_mark(marks.get(b.id)) for b in bindings]
    columns["HOST"] = [_text(_host(b)) for b in bindings]
    columns["FAMILY"] = [_text(b.family) for b in bindings]
    columns["TARGET"] = [_text(_target(b)) for b in bindings]
    columns["CONTAINER"] = [_text(b.container_name or "-") for b in bindings]
    columns["OWNER"] = [_text(b.owner) for b in bindings]
    nothing = Text("nothing", style="red")
    columns["CARRIED BY"] = [_text("+".join(b.carriers)) if b.carriers else nothing for b in bindings]
    if any(reaches):  # a REACH column only when some DNAT is not reached from everywhere
        columns["REACH"] = reaches
    width = console.width
    if wide:
        width = max(width, _natural_width(columns))
    else:
        for name in _DROP_ORDER:
            if _fits(columns, width):
                break
            del columns[name]
    for name in columns:
        if name in _TOKENS:
            table.add_column(name, no_wrap=True, overflow="ignore", min_width=_natural(name, columns[name]))
        else:
            table.add_column(name, overflow="fold", max_width=32 if name == "REACH" and not wide else None)
    for row in zip(*columns.values(), strict=True):
        table.add_row(*row)
    if not _fits(columns, width):  # the addresses alone are wider than the terminal: keep them whole
        width = max(width, _natural_width(columns))
    if width <= console.width:
        console.print(table, width=width)
        return
    saved = console.width  # print's width= cannot exceed the console's: widen the console for this table
    console.width = width
    try:
        console.print(table)
    finally:
        console.width = saved


def _natural(name: str, cells: list[Text]) -> int:
    return max([cell_len(name), *(c.cell_len for c in cells)])


def _natural_width(columns: dict[str, list[Text]]) -> int:
    return sum(_natural(n, c) for n, c in columns.items()) + 3 * len(columns) + 1


def _plain_reach(b: Binding) -> str:
    reach = b.reach
    if reach is None:
        return ""
    text = reach.summary() if reach.restricted else ""
    return text if reach.certain else (f"(uncertain) {text}" if text else "uncertain")


def print_columns(bindings: list[Binding], console: Console, marks: dict[str, str | None] | None = None) -> None:
    """The table's columns as plain text, aligned, one line per binding: linear and fast at any size."""
    severities = {bid: severity for bid, severity in (marks or {}).items() if severity is not None}
    marked = any(b.id in severities for b in bindings)
    rows = [
        [
            *([SEVERITY_MARK[severities[b.id]][0] if b.id in severities else ""] if marked else []),
            *(printable(cell)
              for cell in (_host(b), b.family, _target(b), b.container_name or "-", b.owner,
                           "+".join(b.carriers) or "nothing", _plain_reach(b))),
        ]
        for b in bindings
    ]  # fmt: skip
    headings = [*(["!"] if marked else []), *_HEADINGS]
    headings += ["REACH"] if any(r[-1] for r in rows) else []
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
