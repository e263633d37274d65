"""The base of every view: a KeyedTable over one kind of row, with its own filter and copy key."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from portscope.tui.cells import Row, filter_rows
from portscope.tui.data import COLUMNS, TITLES, Model
from portscope.tui.details import copy_text, detail
from portscope.tui.widgets.keyed_table import KeyedTable


class TableView(Vertical):
    """One tab: a table of `model.rows[VIEW]`, filtered by `query`."""

    VIEW: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy", id="copy", tooltip="Copy the selected row's identifier to the clipboard"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter",
                tooltip="Drop this view's filter"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__(id=f"view-{self.VIEW}", classes="view")
        self.model: Model | None = None
        self.query_text = ""
        self.dirty = False
        self._shown: list[Row] | None = None  # the filtered rows of `model`, computed once

    @property
    def title(self) -> str:
        return TITLES[self.VIEW]

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS[self.VIEW], id=f"{self.VIEW}-table")

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    def rows_for(self, model: Model) -> list[Row]:
        """This view's rows of `model` (views may restyle them)."""
        return model.rows.get(self.VIEW, [])

    def show(self, model: Model) -> None:
        """Show a new model: rows are diffed into the table (now if this view is on screen, else when it is)."""
        self.model = model
        self._shown = None
        self.invalidate()

    def set_filter(self, query: str) -> None:
        if query != self.query_text:
            self.query_text = query
            self._shown = None
            self.invalidate()

    def invalidate(self) -> None:
        """The rows to show changed: sync the table now if visible, else on activation."""
        self.dirty = True
        if self.app.current_view is self:  # type: ignore[attr-defined]
            self.activate()

    def activate(self) -> None:
        """Bring the table up to date (called when the view comes on screen)."""
        if self.dirty and self.model is not None:
            self.dirty = False
            self.table.sync(self.visible_rows(), self.model.widths.get(self.VIEW))

    def visible_rows(self) -> list[Row]:
        if self.model is None:
            return []
        if self._shown is None:
            self._shown = filter_rows(self.rows_for(self.model), self.query_text)
        return self._shown

    @property
    def counts(self) -> tuple[int, int]:
        """(rows matching the filter, rows in all), whether or not the table is synced yet."""
        if self.model is None:
            return 0, 0
        total = self.model.count(self.VIEW)
        return (len(self.visible_rows()) if self.query_text else total), total

    def detail_text(self) -> Text:
        key = self.table.selected_key
        if self.model is None:
            return Text("no data yet", style="dim")
        if key is None:
            return Text("nothing matches the filter" if self.query_text else "nothing to show", style="dim")
        return detail(self.model, self.VIEW, key)

    def copy_text(self) -> str | None:
        key = self.table.selected_key
        return None if self.model is None or key is None else copy_text(self.model, self.VIEW, key)

    def action_copy(self) -> None:
        text = self.copy_text()
        if not text:
            self.notify("Nothing selected to copy", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(text, title="Copied to the clipboard", timeout=4)

    def action_clear_filter(self) -> None:
        self.app.action_clear_filter()  # type: ignore[attr-defined]
