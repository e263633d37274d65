"""Rules: the raw NAT chains per backend and family; the rules behind the selected binding are marked ▶."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from portscope.tui.cells import Row
from portscope.tui.data import mark_rules
from portscope.tui.widgets.table_view import TableView


class RulesView(TableView):
    VIEW = "rules"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy rule", id="rules-copy", tooltip="Copy the rule's text"),
        Binding("n", "next_marked", "Next ▶", id="next-marked",
                tooltip="Move to the next rule behind the selected binding (marked ▶)"),
    ]  # fmt: skip

    def __init__(self, fleet: bool = False) -> None:
        super().__init__(fleet)
        self.marked: frozenset[str] = frozenset()

    def styled(self, rows: list[Row]) -> list[Row]:
        return mark_rules(rows, self.marked)

    def mark(self, keys: frozenset[str]) -> None:
        """Mark the rules with these keys (the selected binding's path)."""
        if keys != self.marked:
            self.marked = keys
            self._shown = None
            self.invalidate()

    def action_next_marked(self) -> None:
        """Cursor to the next marked rule in display order (wrapping)."""
        shown = self.table.shown_keys
        if not self.marked or not shown:
            self.notify("No rules are marked: select a binding in Ports first", severity="warning")
            return
        start = self.table.cursor_row
        n = len(shown)
        for step in range(1, n + 1):
            i = (start + step) % n
            if shown[i] in self.marked:
                self.table.move_cursor(row=i)
                return
        self.notify("The marked rules are hidden by the filter", severity="warning")
