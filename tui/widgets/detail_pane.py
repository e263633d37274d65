"""The detail pane: the full evidence behind the selected row of the current view."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class DetailPane(VerticalScroll, can_focus=False):
    """Scrollable; shows whatever the current view's selected row explains."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.subject: tuple[str, str | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="detail-text")

    def show(self, text: Text, subject: tuple[str, str | None]) -> None:
        """Show `text` for `subject` (view, row key); a new subject scrolls back to the top."""
        self.query_one("#detail-text", Static).update(text)
        if subject != self.subject:
            self.subject = subject
            self.scroll_home(animate=False)
