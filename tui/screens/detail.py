"""The full-screen detail of one row (enter): every rule, process and fix, scrollable and copyable."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from portscope.tui.literal import literal


class DetailScreen(ModalScreen[None]):
    CSS_PATH = "detail.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="detail-close", tooltip="Back to the table"),
        Binding("c", "copy", "Copy", id="detail-copy", tooltip="Copy the fix (or the row's identifier)"),
    ]

    def __init__(self, title: str, text: Text, copy: str | None) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.copy = copy

    def compose(self) -> ComposeResult:
        with Vertical(id="detail-box") as box:
            box.border_title = literal(self.title_text)
            box.border_subtitle = "esc close · c copy"
            with VerticalScroll(id="detail-scroll"):
                yield Static(self.text, id="detail-full")
        yield Footer()

    def action_copy(self) -> None:
        if not self.copy:
            self.notify("Nothing to copy", severity="warning")
            return
        self.app.copy_to_clipboard(self.copy)
        self.notify(self.copy, title="Copied to the clipboard", timeout=4)
