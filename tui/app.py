"""The portscope app: six views over one snapshot, read in a worker thread and refreshed in place.

The data source is injected (`load`), so tests pass a capture loader, or one that raises or hangs;
so are the changes (`apply_change`, `preview_change`, `read_state`: core.publish by default; `recreate`:
core.recreate).
Reads never overlap: the next one is armed with `set_timer` only after the last one finished.
Live, a `LiveFeed` (core.changes) says what changed: rules, containers or listeners are read again then,
and only those; a full read every `refresh` seconds is the safety net.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.console import RenderableType
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.timer import Timer
from textual.widgets import DataTable, Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from portscope.core.changes.feed import Feed, LiveFeed
from portscope.core.errors import PortscopeError
from portscope.core.live import PARTS, same_facts
from portscope.core.model import Snapshot
from portscope.core.printable import printable
from portscope.core.publish.model import StoredBinding
from portscope.tui.commands import PortscopeCommands
from portscope.tui.data import TITLES, Model, build_model, release
from portscope.tui.header import banner_lines, header_parts
from portscope.tui.keymap import VIEW_CLASSES, help_sections, view_binding
from portscope.tui.publish_support import (
    Applier,
    PublishRequest,
    change_refusal,
    not_offered,
    read_stored,
    running,
)
from portscope.tui.publish_support import apply_change as core_apply
from portscope.tui.publish_support import preview_change as core_preview
from portscope.tui.recreate_support import Recreator, recreate_container
from portscope.tui.screens.confirm_change import ConfirmChange
from portscope.tui.screens.detail import DetailScreen
from portscope.tui.screens.help import HelpScreen
from portscope.tui.screens.publish_form import PublishForm
from portscope.tui.widgets.banner import Banner
from portscope.tui.widgets.containers_view import ContainersView
from portscope.tui.widgets.detail_pane import DetailPane
from portscope.tui.widgets.filter_bar import FilterBar
from portscope.tui.widgets.keyed_table import KeyedTable
from portscope.tui.widgets.ports_view import PortsView
from portscope.tui.widgets.rules_view import RulesView
from portscope.tui.widgets.status_line import StatusLine
from portscope.tui.widgets.table_view import TableView

#: Young-generation collections between two full ones (Python's default is 10).
FULL_GC_EVERY = 10_000
#: Seconds after a new model is shown before the old one is freed (in a worker, in chunks).
RELEASE_DELAY = 0.5
#: Seconds between two full reads when change notifications drive the refresh (the safety net)...
FULL_READ_EVERY = 60.0
#: ... or more on a large host: full reads take at most this share of the time.
FULL_READ_SHARE = 0.01


def describe_error(err: BaseException) -> str:
    """One line for a failed read."""
    if isinstance(err, PortscopeError):
        return str(err)
    if isinstance(err, PermissionError):
        where = f" ({err.filename})" if err.filename else ""
        return f"permission denied{where}: run with sudo to read everything"
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return f"{type(err).__name__}: {err}"


class PortscopeApp(App[None]):
    """Every port published to containers on this host, live or from a capture."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses elsewhere (bench) find it too
    TITLE = "portscope"
    #: The views, in tab order, and whether they show a fleet (tui.fleet_app adds the Hosts view and a HOST column).
    view_classes: ClassVar[tuple[type[TableView], ...]] = VIEW_CLASSES
    fleet: ClassVar[bool] = False
    COMMANDS = App.COMMANDS | {PortscopeCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave portscope"),
        Binding("question_mark", "help", "Help", id="help", tooltip="Show every key and what it does"),
        Binding("slash", "filter", "Filter", id="filter",
                tooltip="Filter the current view as you type (port, container, address, process)"),
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="Read the host (or the capture) again now"),
        Binding("p", "pause", "Pause", id="pause", tooltip="Pause or resume the periodic live refresh"),
        Binding("d", "toggle_detail", "Detail pane", show=False, id="toggle-detail",
                tooltip="Hide or show the detail pane under the table"),
        *(view_binding(n, cls.VIEW, TITLES[cls.VIEW]) for n, cls in enumerate(VIEW_CLASSES, start=1)),
    ]  # fmt: skip

    def __init__(
        self,
        load: Callable[[], Snapshot],
        *,
        refresh: float = 5.0,
        source: str | None = None,
        read_timeout: float = 15.0,
        apply_change: Applier | None = None,
        preview_change: Applier | None = None,
        read_state: Callable[[], list[StoredBinding]] | None = None,
        recreate: Recreator | None = None,
        feed: Feed | None = None,
    ) -> None:
        """`load` reads one snapshot (it runs in a thread); `refresh` seconds between reads (0: only on `r`);
        `source` names a capture file (None: the live host); a read slower than `read_timeout` is reported.
        `apply_change` / `preview_change` make a publish/unpublish/block/unblock for real / as a dry run, and
        `read_state` reads portscope's stored bindings (each runs in a thread; default: core.publish);
        `recreate` recreates a container with other ports, or dry-runs that (default: core.recreate);
        `feed` (live only) tells what changed and reads only that, so `refresh` is then the full read's period."""
        super().__init__()
        self.load = load
        self.apply_change: Applier = apply_change or core_apply
        self.preview_change: Applier = preview_change or core_preview
        self.read_state: Callable[[], list[StoredBinding]] = read_state or read_stored
        self.recreate: Recreator = recreate or recreate_container
        self.refresh_interval = refresh
        self.source = source
        self.read_timeout = read_timeout
        self.model: Model | None = None
        self.paused = False
        self.reading = False
        self.stale: str | None = None
        self.reads = 0  # finished reads, good or bad
        self.read_again = False  # a change was made during a read: read once more when it ends
        self.selected_binding: str | None = None
        self.exiting = False  # `exit` was called: the app is closing down
        self._next_read: Timer | None = None
        self._watchdog: Timer | None = None
        self._read_started = 0.0
        self._gc_thresholds = gc.get_threshold()
        self._fresh: Model | None = None
        self._same_at: str | None = None  # a read found the host as shown: its time
        self._retired: list[Model] = []
        self.feed = feed
        self.watching: list[str] | None = None  # None: not watching; else the sources that cannot be followed
        self._reading_parts: frozenset[str] = PARTS
        self._pending: set[str] = set()  # parts that changed during a read: read them when it ends
        self.full_read_at: str | None = None  # local time of the last full read (the header shows it)
        self._full_read_seconds = 0.0  # how long it took

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification is plain text, whatever `markup` says (widgets pass True by default):
        they quote rules, container names and errors from the host. Controls are made visible."""
        super().notify(printable(message), title=printable(title), severity=severity, timeout=timeout, markup=False)

    def exit(self, result: None = None, return_code: int = 0, message: RenderableType | None = None) -> None:
        """Exit as `App.exit` does, noted first: timers and workers that still fire check `closing_down`."""
        self.exiting = True
        super().exit(result, return_code, message)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Banner(id="banner")
        with TabbedContent(id="views", initial=VIEW_CLASSES[0].VIEW):
            for cls in self.view_classes:
                with TabPane(cls.view_title(), id=cls.VIEW):
                    yield cls(self.fleet)
        yield DetailPane(id="detail")
        yield FilterBar(id="filter", fleet=self.fleet)
        yield Footer()

    def on_mount(self) -> None:
        # A full garbage collection walks every object: with a large host (thousands of bindings) that
        # is a stall of several hundred ms, and the default policy runs one after nearly every read.
        # Reads make no reference cycles worth collecting soon, so full collections are made rare.
        self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(self._gc_thresholds[0], self._gc_thresholds[1], FULL_GC_EVERY)
        self.query_one(Banner).show([])
        self.query_one(FilterBar).display = False
        self._show_status()
        self.current_view.table.focus()
        self.start_read()

    def _start_watching(self) -> None:
        """After the first read: follow changes; a source that cannot be followed is said once."""
        if self.feed is None or self.source is not None or self.watching is not None:
            return
        self.watching = self.feed.watch(self._host_changed)
        for problem in self.watching:
            self.notify(problem, title="Not followed", severity="warning", timeout=8)

    def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_thresholds)
        if self.feed is not None:
            self.feed.stop()

    @property
    def views(self) -> list[TableView]:
        return list(self.query(TableView))

    def view(self, name: str) -> TableView:
        return self.query_one(f"#view-{name}", TableView)

    @property
    def current_view(self) -> TableView:
        active = self.query_one(TabbedContent).active or VIEW_CLASSES[0].VIEW
        return self.view(active)

    @property
    def mode_text(self) -> str:
        if self.source is not None:
            return f"capture {os.path.basename(self.source)}"
        if self.paused:
            return "live, paused"
        if self.watching is not None:
            full = f"full read {self.full_read_at}" if self.full_read_at else "full read"
            every = f" every {self.full_read_every:.0f} s" if self.refresh_interval > 0 else ""
            return f"live, on change; {full}{every}"
        if self.refresh_interval <= 0:
            return "live, refresh with r"
        return f"live, every {self.refresh_interval:g} s"

    @property
    def closing_down(self) -> bool:
        """True once the app is exiting (a timer or a worker may still fire: they must not touch widgets)."""
        return self.exiting or not self.query(StatusLine)

    # ------------------------------------------------------------------ reading

    def start_read(self, parts: frozenset[str] = PARTS) -> None:
        """Start a read (of `parts`; everything by default) in the worker unless one is running."""
        if self.reading or self.closing_down:
            return
        if parts == PARTS:
            self._cancel_next()
        self._reading_parts = parts if self.feed is not None else PARTS
        self.reading = True
        self._read_started = time.monotonic()
        self._watchdog = self.set_timer(self.read_timeout, self._read_is_slow)
        self._show_status()
        self.read_snapshot()

    @work(thread=True, exclusive=True, exit_on_error=False, group="read", description="read the host")
    def read_snapshot(self) -> None:
        """Load and analyse a snapshot; every row is built here, off the main thread.

        The model is handed over in `_fresh`, not as the worker's result: a finished worker lives on in
        reference cycles, and a model kept by one would only be freed by a full garbage collection —
        a long main-thread stall with a large host.
        """
        parts, previous = self._reading_parts, self.model
        snap = self.load() if parts == PARTS or self.feed is None else self.feed.read(parts)
        if previous is not None and same_facts(previous.snap, snap):
            self._same_at = snap.taken_at  # nothing to analyse or redraw: only the time of the read is new
        else:
            self._fresh = build_model(snap, previous)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a read ends: apply its data, or report its error and keep the last data."""
        if event.worker.group != "read" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        if self.closing_down:
            return
        self.reading = False
        self.reads += 1
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if event.state == WorkerState.SUCCESS:
            self.stale = None
            if self._reading_parts == PARTS:
                self.full_read_at = time.strftime("%H:%M:%S")
                self._full_read_seconds = time.monotonic() - self._read_started
            fresh, self._fresh = self._fresh, None
            same_at, self._same_at = self._same_at, None
            if fresh is not None:
                self.apply(fresh)
            elif same_at is not None and self.model is not None:
                self.model.snap = replace(self.model.snap, taken_at=same_at)
        elif event.state == WorkerState.ERROR:
            message = describe_error(event.worker.error) if event.worker.error else "unknown error"
            self.stale = f"last read failed: {message}"
            keep = "showing the last good data" if self.model else "no data yet"
            self.notify(f"{message} — {keep}; r tries again", title="Read failed", severity="error", timeout=8)
        self._start_watching()
        self._show_status()
        if self.read_again:
            self.read_again = False
            self._pending.clear()
            self.start_read()
        elif self._pending:
            parts, self._pending = frozenset(self._pending), set()
            self.start_read(parts)
            self._arm_next()
        else:
            self._arm_next()

    def _host_changed(self, kinds: frozenset[str]) -> None:
        """From the watcher's thread: something changed; read those parts in the app's time."""
        if self.closing_down:
            return
        with contextlib.suppress(RuntimeError):  # the app has stopped in between
            self.call_from_thread(self.read_changed, kinds)

    def read_changed(self, kinds: frozenset[str]) -> None:
        """Read the parts that changed now, or right after the running read."""
        if self.paused or self.closing_down:
            return
        if self.reading:
            self._pending |= kinds
        else:
            self.start_read(frozenset(kinds))

    def _read_is_slow(self) -> None:
        """The read outlived `read_timeout`: say so; the UI keeps the last data and stays usable."""
        self._watchdog = None
        if not self.reading or self.closing_down:
            return
        self.stale, message = self.slow_read_words(time.monotonic() - self._read_started)
        self.notify(message, title="Read timed out", severity="warning", timeout=10)
        self._show_status()

    def slow_read_words(self, waited: float) -> tuple[str, str]:
        """The header's stale mark and the notice for a read that has run `waited` seconds."""
        return (
            f"read still running after {waited:.0f} s (Docker socket not answering?)",
            f"Reading the host has taken {waited:.0f} s: the Docker socket or a firewall tool may hang. "
            "The last data stays on screen, marked stale; it updates when the read ends.",
        )

    def release_models(self) -> None:
        if self._retired and not self.closing_down:
            self._release_worker()

    @work(thread=True, exit_on_error=False, group="release", description="free old data")
    def _release_worker(self) -> None:
        """Free replaced models off the main thread, in chunks (see `tui.data.release`)."""
        while self._retired:
            release(self._retired.pop())

    def _arm_next(self) -> None:
        if self.source is None and self.refresh_interval > 0 and not self.paused and self._next_read is None:
            self._next_read = self.set_timer(self.full_read_every, self._full_read_due)

    @property
    def full_read_every(self) -> float:
        """Seconds between two full reads: `refresh`, and while changes are followed at least FULL_READ_SHARE's
        worth of the last full read's time (a large host's full read is the one cost left when nothing changes)."""
        if self.watching is None:
            return self.refresh_interval
        return max(self.refresh_interval, self._full_read_seconds / FULL_READ_SHARE)

    def _full_read_due(self) -> None:
        self._next_read = None
        if self.reading:
            self.read_again = True
        else:
            self.start_read()

    def _cancel_next(self) -> None:
        if self._next_read is not None:
            self._next_read.stop()
            self._next_read = None

    def apply(self, model: Model) -> None:
        """Show a new model in every view, in place: selections and scroll positions stay."""
        previous = self.model
        self.model = model
        self.show_model(model, banner_lines(model.snap))
        engine = model.snap.engine
        was = previous.snap.engine if previous else None
        if previous is not None:
            self._retired.append(previous)
            del previous
            self.set_timer(RELEASE_DELAY, self.release_models)  # after the screen has been redrawn
        if not engine.reachable and (was is None or was.reachable or was.reason != engine.reason):
            self.notify(engine.reason or "the container engine did not answer", title="No Docker",
                        severity="warning", timeout=8)  # fmt: skip

    def show_model(self, model: Model, banner: list[str]) -> None:
        """`model` in every view, `banner` above them, the labels and the detail pane: one screen update."""
        with self.batch_update():
            for view in self.views:
                view.show(model)
            self.query_one(Banner).show(banner)
            self._update_labels()
            self._update_detail()

    # ------------------------------------------------------------------ keeping the chrome in step

    def status_parts(self) -> list[str]:
        """The header's parts: the host, rules read, engine, root or not, time of the read."""
        return header_parts(self.model.snap) if self.model else ["no data yet"]

    def _show_status(self) -> None:
        parts = self.status_parts()
        self.query_one(StatusLine).show(parts, self.mode_text, stale=self.stale, reading=self.reading)
        self.screen.set_class(bool(self.stale), "-stale")

    def _update_labels(self) -> None:
        tabs = self.query_one(TabbedContent)
        for view in self.views:
            shown, total = view.counts
            count = f"{shown}/{total}" if view.query_text else str(total)
            tab, label = tabs.get_tab(view.VIEW), f"{view.title} {count}"
            if tab.label_text != label:  # an unchanged label would still cost a layout pass
                tab.label = label

    def _update_detail(self) -> None:
        view = self.current_view
        self.query_one(DetailPane).show(view.detail_text(), (view.VIEW, view.table.selected_key))

    def on_keyed_table_synced(self, event: KeyedTable.Synced) -> None:
        self._update_labels()
        if event.table.parent is self.current_view:
            self._update_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        view = event.data_table.parent
        if isinstance(view, PortsView):
            self.selected_binding = view.table.selected_key
            rules = self.model.binding_rules.get(self.selected_binding or "", frozenset()) if self.model else None
            self.query_one(RulesView).mark(rules or frozenset())
        if view is self.current_view:
            self._update_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click on the selected row) opens the full detail."""
        if event.data_table.parent is self.current_view:
            self.action_details()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        view = self.current_view
        view.activate()
        bar = self.query_one(FilterBar)
        bar.value = view.query_text
        bar.display = bool(view.query_text)
        if not bar.has_focus:
            view.table.focus()
        self._update_detail()

    def on_input_changed(self, event: FilterBar.Changed) -> None:
        if isinstance(event.input, FilterBar):
            self.current_view.set_filter(event.value)
            self._update_labels()

    # ------------------------------------------------------------------ actions

    def action_show_view(self, name: str) -> None:
        """Switch to a view (1-6, the tabs, or the palette)."""
        self.query_one(TabbedContent).active = name
        self.view(name).activate()
        self.view(name).table.focus()

    def action_refresh(self) -> None:
        """Read again now (a read that is still running is not doubled)."""
        if self.reading:
            waited = time.monotonic() - self._read_started
            self.notify(f"A read is already running ({waited:.0f} s so far)", timeout=3)
            return
        self.start_read()

    def action_pause(self) -> None:
        """Pause or resume the periodic refresh."""
        if self.source is not None or (self.refresh_interval <= 0 and self.watching is None):
            self.notify("Live refresh is off here (a capture, or --refresh 0): r reads again", timeout=4)
            return
        self.paused = not self.paused
        if self.paused:
            self._cancel_next()
            self.notify("Live refresh paused: p resumes, r reads once", timeout=3)
        else:
            self.notify(f"Live refresh resumed (every {self.refresh_interval:g} s)", timeout=3)
            self.start_read()
        self._show_status()

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.value = self.current_view.query_text
        bar.display = True
        bar.focus()

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.value = ""
        self.current_view.set_filter("")
        bar.display = False
        self._update_labels()
        self.current_view.table.focus()

    def action_focus_view(self) -> None:
        """Back from the filter bar to the table (the filter stays)."""
        view = self.current_view
        self.query_one(FilterBar).display = bool(view.query_text)
        view.table.focus()

    def action_toggle_detail(self) -> None:
        pane = self.query_one(DetailPane)
        pane.display = not pane.display

    def action_details(self) -> None:
        view = self.current_view
        key = view.table.selected_key
        if key is None or self.model is None:
            self.notify("Nothing selected", severity="warning", timeout=3)
            return
        title = f"{view.title}: {view.row_title(key)}"
        self.push_screen(DetailScreen(title, view.detail_text(), view.copy_text()))

    def action_copy(self) -> None:
        self.current_view.action_copy()

    def action_sort_next(self) -> None:
        self.current_view.table.action_sort_next()

    def action_sort_reverse(self) -> None:
        self.current_view.table.action_sort_reverse()

    def action_goto_rules(self) -> None:
        """Open Rules at the first rule behind the binding selected in Ports."""
        rules = self.query_one(RulesView)
        if not rules.marked:
            self.notify("Select a binding in Ports first", severity="warning", timeout=3)
            return
        self.action_show_view("rules")
        shown = rules.table.shown_keys
        first = next((i for i, k in enumerate(shown) if k in rules.marked), None)
        if first is not None:
            rules.table.move_cursor(row=first)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_sections(self)))

    # ------------------------------------------------------------------ changes (publish, unpublish, block)

    def _refused_change(self) -> bool:
        """Say why nothing can be changed from here (a capture, not root, no data yet); True if so."""
        why = change_refusal(self.source, self.model.snap if self.model else None)
        if why:
            self.notify(why, title="Cannot change ports here", severity="warning", timeout=6)
        return why is not None

    def action_publish(self) -> None:
        """Open the publish form (the selected container preselected when it is running)."""
        if self._refused_change() or self.model is None:
            return
        snap, view = self.model.snap, self.current_view
        key = view.table.selected_key
        chosen = None
        if isinstance(view, ContainersView):
            chosen = key
        elif isinstance(view, PortsView) and key in self.model.bindings:
            chosen = self.model.bindings[key].container_id
        if not running(snap):
            self.notify("No container is running: start one first", title="Nothing to publish to",
                        severity="warning", timeout=6)  # fmt: skip
            return
        form = PublishForm(snap, preview=self.preview_change, apply=self.apply_change, recreate=self.recreate,
                           container_id=chosen, note=not_offered(snap, chosen))  # fmt: skip
        self.push_screen(form, self._changed)

    def action_change_binding(self) -> None:
        """Confirm unpublishing (portscope's), blocking or unblocking (another owner's) the selected binding;
        for a port Docker publishes, recreating its container without it is offered beside blocking."""
        if self._refused_change() or self.model is None:
            return
        binding = self.model.bindings.get(self.view("ports").table.selected_key or "")
        if binding is None:
            self.notify("Select a binding in Ports first", severity="warning", timeout=3)
            return
        container = self.model.container_of(binding)
        screen = ConfirmChange(binding, read_state=self.read_state, preview=self.preview_change,
                               apply=self.apply_change, recreate=self.recreate, container=container)  # fmt: skip
        self.push_screen(screen, self._changed)

    def _changed(self, done: PublishRequest | bool | None) -> None:
        """A form or confirmation closed: after a change, read the host again at once so the tables show it."""
        if done:
            self.read_now()

    def read_now(self) -> None:
        """Read now, or right after the read that is running (whose data may predate the change)."""
        if self.reading:
            self.read_again = True
        else:
            self.start_read()


def run_app(snapshot: str | None = None, refresh: float | None = None) -> int:
    """Run the TUI on the live host, or read-only on a capture file. Returns an exit status."""
    feed: Feed | None = None
    if snapshot is not None:
        from portscope.core.snapshot import read_capture

        load: Callable[[], Snapshot] = partial(read_capture, snapshot)
        interval = 0.0 if refresh is None else refresh
    else:
        feed = LiveFeed()
        load = feed.read
        interval = FULL_READ_EVERY if refresh is None else refresh
    return run_to_exit(PortscopeApp(load, refresh=interval, source=snapshot, feed=feed))


def run_to_exit(app: PortscopeApp) -> int:
    """Run `app` and return its exit status; while a read still hangs (the Docker socket, a host), the process
    ends at once instead of waiting for that thread."""
    app.run()
    code = app.return_code or 0
    if app.reading:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
