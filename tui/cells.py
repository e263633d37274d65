"""Table cells and rows: what every view's table shows, built off the main thread (no Textual)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

from portscope.core.findings import SEVERITY_ORDER
from portscope.core.printable import printable

SEVERITY_MARK: dict[str, tuple[str, str]] = {
    "error": ("✖", "bold red"),
    "warning": ("▲", "yellow"),
    "info": ("●", "cyan"),
}
MAX_CELL = 72  # longer cell text is cut with "…"; the detail pane shows it in full


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell: text, a Rich style, and the value it sorts by (its text when not given).

    It renders itself and reports a width measured once, so a table of thousands of rows
    never re-measures text. The text is shown as given, never parsed as markup; its control
    characters are made visible (`core.printable`), since most cells hold host text.
    """

    text: str
    style: str = ""
    sort: tuple[Any, ...] = ()
    width: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        text = printable(self.text)
        if text is not self.text:
            object.__setattr__(self, "text", text)
        # After `printable`, ASCII text holds no control character: one cell per character.
        object.__setattr__(self, "width", len(text) if text.isascii() else cell_len(text))

    @property
    def sort_key(self) -> tuple[Any, ...]:
        return self.sort or (self.text.casefold(),)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # One segment, cut with "…" when too wide: much cheaper than rendering a Text per cell.
        text, width = self.text, options.max_width
        if self.width > width:
            text = set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
        yield Segment(text, Style.parse(self.style) if self.style else None)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Row:
    """A table row: a stable key, its cells, the lower-case text `/` searches, and its default order.

    `host` is the fleet host the row comes from (what a `host:NAME` filter term matches; "" for one host).
    `sig` (a hash of the cells, computed where the row is built: in the worker) lets a refresh find
    the rows that changed without comparing every cell on the main thread.
    """

    key: str
    cells: tuple[Cell, ...]
    search: str
    order: tuple[Any, ...] = ()
    host: str = ""
    sig: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sig", hash(self.cells))


def column_widths(columns: Sequence[Column], rows: Sequence[Row]) -> tuple[int, ...]:
    """The widest cell (or label) of each column over all of a view's rows: filtering never moves columns."""
    widths = [cell_len(c.label) + 1 for c in columns]  # +1: room for the sort arrow
    for i in range(len(widths)):
        widths[i] = max(widths[i], max((r.cells[i].width for r in rows), default=0))
    return tuple(widths)


def clip(text: str, limit: int = MAX_CELL) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mark_cell(severity: str | None) -> Cell:
    if severity is None:
        return Cell("", sort=(9,))
    mark, style = SEVERITY_MARK[severity]
    return Cell(mark, style, sort=(SEVERITY_ORDER[severity],))


HOST_TERM = "host:"


def filter_rows(rows: Sequence[Row], query: str) -> list[Row]:
    """Rows whose search text holds every word of `query` (case-insensitive).

    A `host:NAME` term keeps the rows of the fleet host NAME; when no host is called exactly that, of every
    host whose name holds NAME (so `host:h` narrows as you type, and `host:h1` is not also `h10`)."""
    words = query.casefold().split()
    hosts = [w.removeprefix(HOST_TERM) for w in words if w.startswith(HOST_TERM) and w != HOST_TERM]
    words = [w for w in words if not w.startswith(HOST_TERM)]
    if not words and not hosts:
        return list(rows)
    keep = list(rows)
    for name in hosts:
        exact = [r for r in keep if r.host.casefold() == name]
        keep = exact or [r for r in keep if name in r.host.casefold()]
    return [r for r in keep if all(w in r.search for w in words)]
