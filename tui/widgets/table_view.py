"""The base of every view: a KeyedTable over one kind of row, with its own filter and copy key."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from portscope.tui.cells import Column, Row, filter_rows
from portscope.tui.data import COLUMNS, TITLES, Model
from portscope.tui.details import copy_text, detail
from portscope.tui.fleet_details import fleet_copy_text, fleet_detail
from portscope.tui.fleet_model import FleetModel, fleet_columns, host_at
from portscope.tui.widgets.keyed_table import KeyedTable

#: What a view shows: one host's model, or a fleet's.
ViewModel = Model | FleetModel


class TableView(Vertical):
    """One tab: a table of `model.rows[VIEW]`, filtered by `query`; in a fleet (`fleet`), with a HOST column."""

    VIEW: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy", id="copy", tooltip="Copy the selected row's identifier to the clipboard"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter",
                tooltip="Drop this view's filter"),
    ]  # fmt: skip

    def __init__(self, fleet: bool = False) -> None:
        super().__init__(id=f"view-{self.VIEW}", classes="view")
        self.fleet = fleet
        self.model: ViewModel | None = None
        self.query_text = ""
        self.dirty = False
        self._shown: list[Row] | None = None  # the filtered rows of `model`, computed once

    @classmethod
    def view_title(cls) -> str:
        return TITLES[cls.VIEW]

    @property
    def title(self) -> str:
        return self.view_title()

    @property
    def columns(self) -> tuple[Column, ...]:
        return fleet_columns(self.VIEW) if self.fleet else COLUMNS[self.VIEW]

    def compose(self) -> ComposeResult:
        yield KeyedTable(self.columns, id=f"{self.VIEW}-table")

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    def styled(self, rows: list[Row]) -> list[Row]:
        """The rows the filter kept, as this view shows them (views may restyle them)."""
        return rows

    def show(self, model: ViewModel) -> None:
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
            self._shown = self.styled(filter_rows(self.model.rows.get(self.VIEW, []), self.query_text))
        return self._shown

    @property
    def counts(self) -> tuple[int, int]:
        """(rows matching the filter, rows in all), whether or not the table is synced yet."""
        if self.model is None:
            return 0, 0
        total = self.model.count(self.VIEW)
        return (len(self.visible_rows()) if self.query_text else total), total

    def row_title(self, key: str) -> str:
        """A row's name for the detail screen's title: its second cell (after the mark, or the severity); in a
        fleet, the host and the same cell of the host's own row."""
        row = self.table.row_data(key)
        if row is None:
            return key
        cells = list(row.cells)
        host = ""
        if self.fleet and self.VIEW in COLUMNS:
            host = cells.pop(host_at(self.VIEW)).text + " "
        return host + cells[1].text if len(cells) > 1 else key

    def detail_text(self) -> Text:
        key = self.table.selected_key
        if self.model is None:
            return Text("no data yet", style="dim")
        if key is None:
            return Text("nothing matches the filter" if self.query_text else "nothing to show", style="dim")
        if isinstance(self.model, FleetModel):
            return fleet_detail(self.model, self.VIEW, key)
        return detail(self.model, self.VIEW, key)

    def copy_text(self) -> str | None:
        key = self.table.selected_key
        if self.model is None or key is None:
            return None
        if isinstance(self.model, FleetModel):
            return fleet_copy_text(self.model, self.VIEW, key)
        return copy_text(self.model, self.VIEW, key)

    def action_copy(self) -> None:
        text = self.copy_text()
        if not text:
            self.notify("Nothing selected to copy", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(text, title="Copied to the clipboard", timeout=4)

    def action_clear_filter(self) -> None:
        self.app.action_clear_filter()  # type: ignore[attr-defined]
