"""The `/` filter: an input that filters the current view as you type."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input


class FilterBar(Input):
    """Enter keeps the filter and returns to the table; Escape clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.clear_filter", "Clear filter", id="filter-clear",
                tooltip="Clear the filter and go back to the table"),
        Binding("enter", "app.focus_view", "Keep filter", id="filter-keep",
                tooltip="Keep the filter and go back to the table"),
        Binding("down", "app.focus_view", "To table", show=False, id="filter-down",
                tooltip="Go back to the table"),
    ]  # fmt: skip

    def __init__(self, *, id: str | None = None, fleet: bool = False) -> None:
        hosts = ", host:NAME for a host's rows" if fleet else ""
        super().__init__(placeholder=f"filter: port, container, address, process…{hosts}", id=id)
