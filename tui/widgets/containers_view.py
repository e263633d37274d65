"""Containers: name, image, state, networks and addresses, requested vs. in-force ports."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from portscope.tui.widgets.table_view import TableView


class ContainersView(TableView):
    VIEW = "containers"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy id", id="containers-copy", tooltip="Copy the container's full id"),
        Binding("a", "app.publish", "Publish…", id="containers-publish",
                tooltip="Publish a port of the selected container: portscope's rules, or recreate it (root, live)"),
    ]  # fmt: skip
