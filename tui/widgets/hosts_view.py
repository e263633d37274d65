"""Hosts (a fleet only): each host — reachable, backends, engine, ports, findings, read time, and why not read."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from portscope.tui.fleet_model import HOSTS, HOSTS_TITLE
from portscope.tui.widgets.table_view import TableView


class HostsView(TableView):
    VIEW = HOSTS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy host", id="hosts-copy",
                tooltip="Copy the host's destination (or, for a host not read, its error)"),
        Binding("a", "app.publish", "Publish…", id="hosts-publish",
                tooltip="Publish a port of a running container on this host (portscope runs there, over ssh)"),
    ]  # fmt: skip

    @classmethod
    def view_title(cls) -> str:
        return HOSTS_TITLE
