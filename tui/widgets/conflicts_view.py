"""Conflicts: every finding, errors first; the detail pane shows explanation, evidence and fix."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from portscope.tui.widgets.table_view import TableView


class ConflictsView(TableView):
    VIEW = "conflicts"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy fix", id="copy-fix", tooltip="Copy the selected finding's fix to the clipboard"),
    ]
