"""`portscope ephemeral`'s text: the range line, the engine's next picks, and a table of what is in the range."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from portscope.core.ephemeral import EphemeralReport
from portscope.core.ephemeral_uses import RangeUse
from portscope.core.printable import printable

_ORDER = {"docker": 0, "published": 1, "listener": 2, "outbound": 3}
_STYLE = {"docker": "cyan", "published": "yellow", "listener": "", "outbound": "dim"}


def print_ephemeral(report: EphemeralReport, uses: list[RangeUse], console: Console) -> None:
    if report.range is None:
        console.print(Text("ephemeral range unknown (ip_local_port_range unreadable)", style="yellow"))
        return
    rng = report.range
    console.print(Text.assemble(
        ("range ", "dim"), (f"{rng.first}-{rng.last}", "bold"), (f"  {report.size:,} ports  ", "dim"),
        (f"{report.used_ports:,} in use ({report.fill:.1%})", "bold"),
        (f"  {report.listeners} listeners, {report.connections} outbound", "dim"),
    ))  # fmt: skip
    reserved = ", ".join(str(r) for r in report.reserved) or "none"
    console.print(Text.assemble(("reserved ", "dim"), reserved))
    picks = " ".join(str(p) for p in report.next_docker_ports) or "-"
    console.print(Text.assemble(("engine's next picks ", "dim"), (picks, "bold cyan")))
    if report.top_processes:
        busiest = printable(", ".join(f"{name} {n}" for name, n in report.top_processes))
        console.print(Text.assemble(("busiest ", "dim"), busiest))
    table = Table(header_style="bold")
    table.add_column("WHAT", no_wrap=True)
    table.add_column("PORT", no_wrap=True)
    table.add_column("WHO", overflow="fold")
    table.add_column("NOTE", overflow="fold")
    for u in sorted(uses, key=lambda u: (_ORDER[u.what], u.port, u.protocol)):
        table.add_row(
            Text(u.what, style=_STYLE[u.what]),
            Text(f"{u.port}/{u.protocol}"),
            Text(printable(u.who)),
            Text(printable(u.note), style="dim"),
        )
    console.print(table)
