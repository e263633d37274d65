"""Ephemeral: the kernel's ephemeral port range, how full it is, and who holds ports in it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from portscope.core.printable import printable
from portscope.tui.fleet_model import FleetModel
from portscope.tui.widgets.keyed_table import KeyedTable
from portscope.tui.widgets.table_view import TableView, ViewModel


class EphemeralView(TableView):
    VIEW = "ephemeral"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy port", id="ephemeral-copy", tooltip="Copy the selected port number"),
    ]

    def compose(self) -> ComposeResult:
        with Horizontal(id="range-line"):
            yield Static(id="range-text")
            yield ProgressBar(total=1, show_eta=False, id="range-fill")
        yield Static(id="range-next")
        yield KeyedTable(self.columns, id=f"{self.VIEW}-table")

    def show(self, model: ViewModel) -> None:
        if isinstance(model, FleetModel):
            self._show_fleet(model)
            super().show(model)
            return
        rep = model.ephemeral
        text, nxt = Text(), Text()
        if rep.range is None:
            text.append("ephemeral range unknown (ip_local_port_range unreadable)", style="yellow")
        else:
            text.append("range ", style="dim")
            text.append(f"{rep.range.first}-{rep.range.last}", style="bold")
            text.append(f"  {rep.size:,} ports  ", style="dim")
            text.append(f"{rep.used_ports:,} in use", style="bold")
            text.append(f"  ({rep.listeners} listeners, {rep.connections} outbound)  ", style="dim")
            text.append("reserved ", style="dim")
            text.append(", ".join(str(r) for r in rep.reserved) or "none")
            nxt.append("Docker's next picks ", style="dim")
            nxt.append(" ".join(str(p) for p in rep.next_docker_ports) or "-", style="bold cyan")
            if rep.top_processes:
                nxt.append("   busiest ", style="dim")
                nxt.append(printable(", ".join(f"{name} {n}" for name, n in rep.top_processes)))
        self.query_one("#range-text", Static).update(text)
        self.query_one("#range-next", Static).update(nxt)
        bar = self.query_one("#range-fill", ProgressBar)
        bar.update(total=max(rep.size, 1), progress=rep.used_ports)
        super().show(model)

    def _show_fleet(self, model: FleetModel) -> None:
        """Each reachable host's range and fill on one line, its next picks on the next; the bar: all of them."""
        text, nxt = Text(), Text()
        size = used = 0
        for n, part in enumerate(model.reachable):
            assert part.model is not None
            rep = part.model.ephemeral
            for line in (text, nxt):
                line.append("    " if n else "")
                line.append(printable(part.host), style="bold cyan")
                line.append(" ")
            if rep.range is None:
                text.append("range unknown", style="yellow")
            else:
                text.append(f"{rep.range.first}-{rep.range.last}", style="dim")
                text.append(" ")
                text.append(f"{rep.used_ports:,} in use", style="bold")
                size, used = size + rep.size, used + rep.used_ports
            nxt.append("next", style="dim")
            nxt.append(" ")
            nxt.append(" ".join(str(p) for p in rep.next_docker_ports[:3]) or "-", style="bold cyan")
        if not model.reachable:
            text.append("no host read yet", style="dim")
        self.query_one("#range-text", Static).update(text)
        self.query_one("#range-next", Static).update(nxt)
        self.query_one("#range-fill", ProgressBar).update(total=max(size, 1), progress=used)
