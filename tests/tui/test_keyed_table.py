"""KeyedTable: rows diffed in place (small and bulk paths), sorted, cursor kept by key, widths from cells."""

from __future__ import annotations

from textual.app import App, ComposeResult

from portscope.tui.cells import Cell, Column, Row
from portscope.tui.widgets.keyed_table import BULK, KeyedTable

COLUMNS = (Column("name", "NAME"), Column("port", "PORT"))


def rows(numbers, tag: str = "") -> list[Row]:
    return [Row(f"k{n}", (Cell(f"svc{n}{tag}"), Cell(str(n), sort=(n,))), f"svc{n}", (n,)) for n in numbers]


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="t")


def cells(table: KeyedTable) -> list[tuple[str, str]]:
    return [tuple(c.text for c in table.get_row(k)) for k in table.shown_keys]  # type: ignore[misc]


async def test_small_and_bulk_changes_keep_the_table_equal_to_the_rows() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows(range(100)))
        await pilot.pause()
        assert table.shown_keys == [f"k{n}" for n in range(100)]
        for wanted in (
            rows(range(1, 100)),  # one removed: remove_row
            rows(range(50, 100)),  # many removed: the bulk path
            rows(range(40, 100)),  # some added
            [*rows(range(40, 60), tag="!"), *rows(range(60, 100))],  # 20 changed: bulk update
            [*rows([41], tag="?"), *rows(range(42, 100))],  # one changed, one removed
        ):
            table.sync(wanted)
            await pilot.pause()
            expected = sorted(wanted, key=lambda r: r.order)
            assert table.shown_keys == [r.key for r in expected]
            assert cells(table) == [tuple(c.text for c in r.cells) for r in expected]
            assert table.row_count == len(wanted)
        assert len(range(50)) > BULK


async def test_cursor_stays_on_its_key_when_rows_move() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows(range(100)))
        await pilot.pause()
        table.move_cursor(row=60)
        await pilot.pause()
        offset = table.cursor_row - table.scroll_y
        table.sync(rows(range(30, 120)))  # 30 rows above the cursor gone, 20 added below
        await pilot.pause()
        assert table.selected_key == "k60" and table.cursor_row == 30
        assert table.cursor_row - table.scroll_y == offset


async def test_sort_by_column_value_then_default_order() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows([5, 30, 100]))
        await pilot.pause()
        table.sort_by("port", reverse=True)
        assert table.shown_keys == ["k100", "k30", "k5"]  # numerically, not "5" > "30"
        assert str(table.columns["port"].label) == "PORT▼"  # type: ignore[index]
        table.sync(rows([5, 30, 100, 7]))  # a new row lands where the sort puts it
        assert table.shown_keys == ["k100", "k30", "k7", "k5"]
        table.sort_by(None)
        assert table.shown_keys == ["k5", "k7", "k30", "k100"]


async def test_widths_come_from_the_cells_or_are_given() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows([1, 123456]))
        await pilot.pause()
        assert table.columns["name"].content_width == len("svc123456")  # type: ignore[index]
        table.sync(rows([1]), widths=(20, 8))
        await pilot.pause()
        assert table.columns["name"].content_width == 20  # type: ignore[index]
