"""The header line: host, rules read, engine, root or not, time of the read, refresh mode, stale marker."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from portscope.core.printable import printable


class StatusLine(Static):
    """One line at the top; the time shown is the snapshot's, never the clock's.

    The stale marker and the read indicator come first, so a narrow terminal never hides them.
    """

    def show(self, parts: list[str], mode: str, *, stale: str | None = None, reading: bool = False) -> None:
        text = Text()
        text.append(" portscope ", style="bold reverse")
        if stale:
            text.append(" ")
            text.append(" STALE ", style="bold black on yellow")
        if reading:
            text.append(" ⟳ reading…", style="cyan")
        for part in parts:
            text.append(" │ ", style="dim")
            text.append(printable(part))
        text.append(" │ ", style="dim")
        text.append(mode, style="italic")
        if stale:
            text.append(" │ ", style="dim")
            text.append(printable(stale), style="yellow")
        self.tooltip = None if stale is None else Text(printable(stale))
        self.set_class(bool(stale), "-stale")
        self.update(text)
