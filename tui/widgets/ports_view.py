"""Ports: every binding — host address:port/proto → container port, owner, carrier, state, issues."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from portscope.tui.widgets.table_view import TableView


class PortsView(TableView):
    VIEW = "ports"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy fix/id", id="ports-copy",
                tooltip="Copy the fix of the binding's first finding, else the binding's id"),
        Binding("g", "app.goto_rules", "Its rules", id="goto-rules",
                tooltip="Open the Rules view at the first NAT rule behind this binding"),
        # Not in the footer, which is full at 120 columns here: `?` lists them.
        Binding("a", "app.publish", "Publish…", show=False, id="ports-publish",
                tooltip="Publish a port of a running container: portscope's rules, or recreate it (root, live host)"),
        Binding("x", "app.change_binding", "Unpublish / block…", show=False, id="unpublish-block",
                tooltip="portscope's: unpublish; another's: block (or unblock); Docker's: also recreate without it"),
    ]  # fmt: skip
