"""A DataTable synced from keyed rows: diffed and updated in place, sortable, cursor kept by key.

`sync(rows)` removes rows whose key is gone, updates changed cells, adds new rows, re-sorts, and
puts the cursor back on the same key at the same height on screen. Large changes go through
bulk paths (one pass instead of one pass per row) and widths come from `Cell.width`, so a table
of 10,000 rows updates in milliseconds.

This is the one module of the TUI that uses Textual internals: the bulk paths read and write the
DataTable attributes named in `DATA_TABLE_INTERNALS` and `textual._two_way_dict.TwoWayDict`.
`tests/tui/test_textual_internals.py` fails when a Textual release drops or renames one of them, and
`tests/tui/test_keyed_table.py` pins the behaviour built on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import Row as TableRow
from textual.widgets.data_table import RowKey

from portscope.tui.cells import Cell, Column, Row

BULK = 16  # more removals than this go through the one-pass path
#: DataTable's private attributes and methods this widget relies on (the last two it overrides).
DATA_TABLE_INTERNALS = (
    "_data",
    "_row_locations",
    "_new_rows",
    "_updated_cells",
    "_update_count",
    "_require_update_dimensions",
    "_total_row_height",
    "_highlight_cursor",
    "_update_column_widths",
    "_update_dimensions",
)


class KeyedTable(DataTable[Cell]):
    """A row-cursor table of `tui.data.Row`s, keyed by `Row.key`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Details", id="details", tooltip="Show the selected row's evidence in full"),
        Binding("s", "sort_next", "Sort", id="sort", tooltip="Sort by the next column (wraps to the default order)"),
        Binding("S", "sort_reverse", "Reverse", id="sort-reverse", tooltip="Reverse the sort order"),
    ]

    class Synced(Message):
        """Posted after `sync` changed what the table shows."""

        def __init__(self, table: KeyedTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.spec = tuple(columns)
        self.sort_column: str | None = None
        self.sort_reverse = False
        self._rows: dict[str, Row] = {}
        self._keys: dict[str, RowKey] = {}
        self._widths: tuple[int, ...] | None = None

    def on_mount(self) -> None:
        for col in self.spec:
            self.add_column(Text(col.label), key=col.key)

    # ------------------------------------------------------------------ reading

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None for an empty table."""
        if not self.row_count:
            return None
        row_key = self._row_locations.get_key(self.cursor_row)
        return None if row_key is None else row_key.value

    @property
    def shown_keys(self) -> list[str]:
        """Row keys in display order."""
        get = self._row_locations.get_key
        return [get(i).value for i in range(self.row_count)]  # type: ignore[union-attr]

    def row_data(self, key: str) -> Row | None:
        return self._rows.get(key)

    # ------------------------------------------------------------------ writing

    def sync(self, rows: Sequence[Row], widths: Sequence[int] | None = None) -> None:
        """Make the table show `rows` (keys unique), changing only what differs; keep the cursor's key.

        `widths` (per column) fixes the column widths, e.g. the widest over all rows, not only the
        filtered ones; without it they are the widest of the rows shown.
        """
        self._widths = tuple(widths) if widths is not None else None
        new = {r.key: r for r in rows}
        old = self._rows
        selected = self.selected_key
        offset = self.cursor_row - int(self.scroll_y)
        gone = [k for k in old if k not in new]
        added = [r for k, r in new.items() if k not in old]
        changed = [(old[k], r) for k, r in new.items() if k in old and old[k].sig != r.sig and old[k] != r]
        if not (gone or added or changed) and [*old] == [*new]:
            return
        with self.app.batch_update():
            self._remove(gone)
            self._update(changed)
            self._add(added)
            self._rows = new
            self._order(force=bool(added or gone))
            if added and not old and self.show_cursor:  # the table was empty: a cursor appears
                self.cursor_coordinate = self.cursor_coordinate
                self._highlight_cursor()
            self._restore(selected, offset)
        self.post_message(self.Synced(self))

    def _update(self, changed: list[tuple[Row, Row]]) -> None:
        """Changed cells: `update_cell` for a few, one pass and one refresh for many."""
        cells = [
            (after.key, col.key, b)
            for before, after in changed
            for col, a, b in zip(self.spec, before.cells, after.cells, strict=True)
            if a != b
        ]
        if len(cells) <= BULK:
            for key, column, value in cells:
                self.update_cell(self._keys[key], column, value)
            return
        for key, column, value in cells:
            self._data[self._keys[key]][column] = value  # type: ignore[index]
        self._update_count += 1
        self._require_update_dimensions = True
        self.refresh()

    def _remove(self, keys: list[str]) -> None:
        if len(keys) <= BULK:
            for k in keys:
                self.remove_row(self._keys.pop(k))
            return
        drop = set(keys)
        for k in keys:
            row_key = self._keys.pop(k)
            del self._data[row_key]
            del self.rows[row_key]
        self._new_rows = {k for k in self._new_rows if k.value not in drop}
        self._updated_cells = {c for c in self._updated_cells if c.row_key.value not in drop}
        self._renumber(k for k in self._keys.values())
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self.refresh(layout=True)
        self.check_idle()

    def _add(self, rows: list[Row]) -> None:
        if not rows:
            return
        keys = [c.key for c in self.ordered_columns]
        for r in rows:  # placed by the `_order` that follows (widths come from the cells, not `_new_rows`)
            row_key = RowKey(r.key)
            self._keys[r.key] = row_key
            self._data[row_key] = dict(zip(keys, r.cells, strict=True))
            self.rows[row_key] = TableRow(row_key, 1)
        self._require_update_dimensions = True
        self._update_count += 1
        self.check_idle()

    def _renumber(self, ordered: Iterable[RowKey]) -> None:
        self._row_locations = TwoWayDict({k: i for i, k in enumerate(ordered)})
        self._update_count += 1

    def _order(self, force: bool = False) -> None:
        """Apply the current sort: a column's sort keys (ties by default order), or the default order."""
        if self.sort_column is None:
            ordered = sorted(self._rows.values(), key=lambda r: r.order, reverse=self.sort_reverse)
        else:
            i = next(n for n, c in enumerate(self.spec) if c.key == self.sort_column)
            ordered = sorted(
                self._rows.values(), key=lambda r: (r.cells[i].sort_key, r.order), reverse=self.sort_reverse
            )
        if force or [r.key for r in ordered] != self.shown_keys:
            self._renumber(self._keys[r.key] for r in ordered)
        self.refresh()

    def _restore(self, selected: str | None, offset: int) -> None:
        """Put the cursor back on `selected` (else keep its index), `offset` rows below the top."""
        if not self.row_count:
            return
        index = self.cursor_row
        if selected is not None and selected in self._keys:
            index = self._row_locations.get(self._keys[selected]) or 0
        index = min(index, self.row_count - 1)
        target = max(0, index - max(0, offset))
        self.move_cursor(row=index, scroll=False)
        self.scroll_to(y=target, animate=False, immediate=True)
        self.call_after_refresh(self.scroll_to, y=target, animate=False)

    # ------------------------------------------------------------------ sorting

    def sort_by(self, column: str | None, reverse: bool = False) -> None:
        """Sort by `column` (None: default order), keeping the cursor's row selected."""
        selected = self.selected_key
        offset = self.cursor_row - int(self.scroll_y)
        self.sort_column, self.sort_reverse = column, reverse
        for col in self.spec:
            arrow = ("▼" if reverse else "▲") if col.key == column else ""
            self.columns[col.key].label = Text(f"{col.label}{arrow}", style="bold" if arrow else "")  # type: ignore[index]
        self._order()
        self._require_update_dimensions = True
        self.check_idle()
        self._restore(selected, offset)

    def action_sort_next(self) -> None:
        keys = [c.key for c in self.spec]
        if self.sort_column is None:
            self.sort_by(keys[0])
        else:
            i = keys.index(self.sort_column) + 1
            self.sort_by(keys[i] if i < len(keys) else None)

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column, not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by that column; a second click reverses."""
        event.stop()
        key = event.column_key.value
        self.sort_by(key, not self.sort_reverse if key == self.sort_column else False)

    # ------------------------------------------------------------------ sizing from Cell.width

    def _update_column_widths(self, updated_cells: set) -> None:
        self._require_update_dimensions = True

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Column widths from the given widths or each cell's stored width (no text measuring), then the size."""
        rows = list(self._rows.values())
        for i, col in enumerate(self.spec):
            column = self.columns.get(col.key)  # type: ignore[call-overload]
            if column is None:
                continue
            given = self._widths
            widest = given[i] if given is not None else max((r.cells[i].width for r in rows), default=0)
            column.content_width = max(widest, cell_len(column.label.plain))
        width = sum(c.get_render_width(self) for c in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width, self._total_row_height + header)
