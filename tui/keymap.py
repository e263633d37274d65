"""The app's views, and every key of the app collected from the classes' BINDINGS (so `?` can never fall out
of date)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App
from textual.binding import Binding
from textual.widgets import DataTable

from portscope.tui.screens.detail import DetailScreen
from portscope.tui.screens.help import Sections
from portscope.tui.widgets.conflicts_view import ConflictsView
from portscope.tui.widgets.containers_view import ContainersView
from portscope.tui.widgets.ephemeral_view import EphemeralView
from portscope.tui.widgets.filter_bar import FilterBar
from portscope.tui.widgets.keyed_table import KeyedTable
from portscope.tui.widgets.listeners_view import ListenersView
from portscope.tui.widgets.ports_view import PortsView
from portscope.tui.widgets.rules_view import RulesView
from portscope.tui.widgets.table_view import TableView

#: The views, in tab order (keys 1-6).
VIEW_CLASSES: tuple[type[TableView], ...] = (
    PortsView,
    ContainersView,
    ConflictsView,
    EphemeralView,
    ListenersView,
    RulesView,
)

MOUSE = [
    ("click a tab", "Switch view", "Or press 1-6"),
    ("click a header", "Sort", "By that column; click again to reverse"),
    ("click a row", "Select", "The detail pane follows; click it again for the full detail"),
    ("wheel", "Scroll", "Tables, the detail pane and the help"),
]


def view_binding(number: int, view: str, title: str) -> Binding:
    """The key that switches to a view (its number)."""
    return Binding(str(number), f"show_view('{view}')", title, show=False, id=f"show-{view}",
                   tooltip=f"Switch to the {title} view")  # fmt: skip


def _merged(*classes: type) -> list[Binding]:
    """The bindings the classes declare themselves, later classes overriding a key (as Textual merges them)."""
    merged: dict[str, Binding] = {}
    for klass in classes:
        for b in Binding.make_bindings(klass.__dict__.get("BINDINGS", [])):
            merged[b.key] = b
    return list(merged.values())


def _rows(app: App, bindings: Iterable[Binding]) -> list[tuple[str, str, str]]:
    rows = []
    for b in bindings:
        key = ", ".join(app.get_key_display(Binding(k.strip(), b.action)) for k in b.key.split(","))
        rows.append((key, b.description or b.action, b.tooltip))
    return rows


def help_sections(app: App) -> Sections:
    """(title, rows) for the help screen: global keys, table keys, each view's keys, filter, detail, mouse."""
    own = [k for k in reversed(type(app).__mro__) if issubclass(k, App) and not k.__module__.startswith("textual")]
    everywhere = _rows(app, _merged(*own))  # the app's keys and its subclasses' (a fleet's Hosts view)
    everywhere.append((app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "")), "Command palette",
                       "Every view and action, by name"))  # fmt: skip
    table = _rows(app, _merged(KeyedTable))
    table += _rows(
        app, [b for b in Binding.make_bindings(DataTable.BINDINGS) if b.key not in ("enter", "left", "right")]
    )
    sections: Sections = [("Everywhere", everywhere), ("In a table", table)]
    for cls in getattr(app, "view_classes", VIEW_CLASSES):
        sections.append((f"{cls.VIEW.capitalize()} view", _rows(app, _merged(TableView, cls))))
    sections.append(("Filter bar", _rows(app, _merged(FilterBar))))
    sections.append(("Detail (enter)", _rows(app, _merged(DetailScreen))))
    sections.append(("Mouse", MOUSE))
    return sections
