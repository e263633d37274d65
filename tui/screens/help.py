"""`?`: every key, by where it works, with what it does."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: (section title, [(keys, action, what it does)])
Sections = list[tuple[str, list[tuple[str, str, str]]]]


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help-close", tooltip="Close the help"),
    ]

    def __init__(self, sections: Sections) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = "portscope keys"
            box.border_subtitle = "esc close"
            with VerticalScroll(id="help-scroll"):
                for title, rows in self.sections:
                    yield Static(self._table(title, rows), classes="help-section")

    @staticmethod
    def _table(title: str, rows: list[tuple[str, str, str]]) -> Table:
        table = Table(title=Text(title, style="bold"), title_justify="left", box=None, show_header=False,
                      padding=(0, 2, 0, 0), expand=True)  # fmt: skip
        table.add_column("key", style="bold cyan", no_wrap=True, min_width=14)
        table.add_column("action", no_wrap=True, min_width=16)
        table.add_column("what", style="dim", ratio=1)
        for key, action, what in rows:
            table.add_row(key, action, what)
        return table
