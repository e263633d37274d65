"""Listeners: every listening TCP socket and bound UDP socket, with its process."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from portscope.tui.widgets.table_view import TableView


class ListenersView(TableView):
    VIEW = "listeners"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy command", id="listeners-copy", tooltip="Copy the process's command line"),
    ]
