"""The app over a fleet: every host's views in one, with a HOST column, a Hosts view, and each host's read
shown as it arrives.

The reads are injected (`read_hosts`: each host's `HostRead` as it arrives, live over ssh or from a fleet
capture), so are the changes (`changes`: how to change one host; tui.remote_changes by default). A fleet read
runs in the app's read worker, never two at once: each host's model is built there (reusing that host's
last one) and merged with the others' (`tui.fleet_model`), and the merged model is handed to the main thread
per host. The next full read is armed when one ends; after a change on a host, that host is read again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from typing import ClassVar

from textual import work
from textual.binding import BindingType

from portscope.core.fleet.destinations import LOCAL as LOCAL_HOST
from portscope.core.fleet.destinations import Destination
from portscope.core.fleet.read import HostRead, read_fleet
from portscope.core.live import PARTS
from portscope.core.model import Snapshot
from portscope.tui.app import RELEASE_DELAY, PortscopeApp, run_to_exit
from portscope.tui.data import Model
from portscope.tui.fleet_header import fleet_banner_lines, fleet_header_parts
from portscope.tui.fleet_model import HOSTS, HOSTS_TITLE, FleetModel, HostPart, host_part, merge, pending
from portscope.tui.keymap import VIEW_CLASSES, view_binding
from portscope.tui.publish_support import change_refusal, host_refusal, not_offered, running
from portscope.tui.remote_changes import LOCAL, HostChanges, host_changes
from portscope.tui.screens.confirm_change import ConfirmChange
from portscope.tui.screens.publish_form import PublishForm
from portscope.tui.widgets.containers_view import ContainersView
from portscope.tui.widgets.hosts_view import HostsView
from portscope.tui.widgets.ports_view import PortsView

#: Reads the hosts named (None: every host), yielding each host's read as it arrives.
HostReader = Callable[[Collection[str] | None], Iterator[HostRead]]
#: Seconds between two full reads of a fleet.
FLEET_REFRESH = 30.0


def _one_host_only() -> Snapshot:
    raise RuntimeError("a fleet is read host by host (FleetApp.read_hosts)")


class FleetApp(PortscopeApp):
    """Every port published to containers on several hosts, live over ssh or from a fleet capture."""

    view_classes = (*VIEW_CLASSES, HostsView)
    fleet = True
    BINDINGS: ClassVar[list[BindingType]] = [view_binding(len(VIEW_CLASSES) + 1, HOSTS, HOSTS_TITLE)]

    def __init__(
        self,
        read_hosts: HostReader,
        hosts: Sequence[str],
        *,
        refresh: float = FLEET_REFRESH,
        source: str | None = None,
        read_timeout: float = 30.0,
        changes: Callable[[str], HostChanges] | None = None,
    ) -> None:
        """`read_hosts` reads hosts (it runs in a thread); `hosts` in the order given; `refresh` seconds between
        full reads (0: only on `r`); `source` names a fleet capture (None: live); a read slower than
        `read_timeout` is reported; `changes(host)` says how to change a host (default: this host's own way)."""
        super().__init__(_one_host_only, refresh=refresh, source=source, read_timeout=read_timeout)
        self.read_hosts = read_hosts
        self.hosts = list(dict.fromkeys(hosts))
        self.changes_for: Callable[[str], HostChanges] = changes or (lambda host: LOCAL)
        self.model: FleetModel | None = None  # type: ignore[assignment]
        self._reading_hosts: frozenset[str] | None = None  # None: every host

    # ------------------------------------------------------------------ reading

    def start_read(self, parts: frozenset[str] = PARTS, hosts: Collection[str] | None = None) -> None:
        """Read every host (or only `hosts`) in the worker unless a read is running."""
        if self.reading or self.closing_down:
            return
        if self.model is None:
            self.apply(pending(self.hosts))  # the Hosts view lists every host from the start
        self._reading_hosts = frozenset(hosts) if hosts else None
        super().start_read()

    @work(thread=True, exclusive=True, exit_on_error=False, group="read", description="read the fleet")
    def read_snapshot(self) -> None:
        """Read the hosts; each one's model is built here and the merged model handed over as it arrives."""
        model = self.model
        parts: dict[str, HostPart] = {p.host: p for p in model.parts} if model is not None else {}
        index = {host: n for n, host in enumerate(self.hosts)}
        for read in self.read_hosts(self._reading_hosts):
            if read.host not in index or self.exiting:  # (no widget is looked at from this thread)
                continue
            parts[read.host] = host_part(read.host, index[read.host], read, parts.get(read.host))
            fresh = merge(list(parts.values()))
            with contextlib.suppress(RuntimeError):  # the app stopped in between
                self.call_from_thread(self.apply, fresh)

    def apply(self, model: FleetModel) -> None:  # type: ignore[override]
        """Show a new fleet model in every view, in place; free the host models it replaced."""
        if self.closing_down:
            return
        previous = self.model
        self.model = model
        self.show_model(model, fleet_banner_lines(model))  # type: ignore[arg-type]  # a FleetModel is shown as a Model
        if previous is not None:
            kept = {id(p.model) for p in model.parts}
            self._retired += [p.model for p in previous.parts if p.model is not None and id(p.model) not in kept]
            if self._retired:
                self.set_timer(RELEASE_DELAY, self.release_models)
        self._show_status()

    def status_parts(self) -> list[str]:
        return fleet_header_parts(self.model) if self.model is not None else ["no data yet"]

    def slow_read_words(self, waited: float) -> tuple[str, str]:
        """Which hosts have not answered; the rest stays usable."""
        model = self.model
        waiting = [p.host for p in model.parts if p.read is None] if model is not None else []
        which = f" ({', '.join(waiting)} not read yet)" if waiting else ""
        return (
            f"fleet read still running after {waited:.0f} s{which}",
            f"Reading the fleet has taken {waited:.0f} s{which}; the hosts read so far stay on screen.",
        )

    # ------------------------------------------------------------------ changes on the selected row's host

    def _selected_part(self) -> tuple[HostPart, Model, str] | None:
        """The host of the current view's selected row (a Hosts row: that host), its model and the row's key in
        that model; None (said why) when there is none or it cannot be changed."""
        if self.source is not None:
            self.notify(change_refusal(self.source, None) or "", title="Cannot change ports here",
                        severity="warning", timeout=6)  # fmt: skip
            return None
        view = self.current_view
        key = view.table.selected_key
        found = self.model.locate(view.VIEW, key) if self.model is not None and key is not None else None
        if found is None:
            self.notify("Select a row of the host to change (in any view; Hosts for the host itself)",
                        severity="warning", timeout=4)  # fmt: skip
            return None
        part, local_key = found
        snap = part.model.snap if part.model is not None else None
        error = part.read.error if part.read is not None else None
        why = host_refusal(part.host, snap, error, local=part.host == LOCAL_HOST)
        if why:
            self.notify(why, title=f"Cannot change ports on {part.host}", severity="warning", timeout=6)
            return None
        assert part.model is not None  # host_refusal refuses a host without a snapshot
        return part, part.model, local_key

    def action_publish(self) -> None:
        """Open the publish form for the host of the selected row (its container preselected when running)."""
        selected = self._selected_part()
        if selected is None or self.model is None:
            return
        part, model, local_key = selected
        snap, view = model.snap, self.current_view
        chosen = None
        if isinstance(view, ContainersView):
            chosen = local_key
        elif isinstance(view, PortsView) and local_key in model.bindings:
            chosen = model.bindings[local_key].container_id
        if not running(snap):
            self.notify(f"No container is running on {part.host}: start one first", title="Nothing to publish to",
                        severity="warning", timeout=6)  # fmt: skip
            return
        changes = self.changes_for(part.host)
        form = PublishForm(snap, preview=changes.preview, apply=changes.apply, recreate=changes.recreate,
                           container_id=chosen, note=not_offered(snap, chosen), host=part.host)  # fmt: skip
        self.push_screen(form, partial(self._changed_on, part.host))

    def action_change_binding(self) -> None:
        """Confirm unpublishing, blocking or unblocking the selected binding, on its host."""
        ports = self.view("ports")
        if self.current_view is not ports:
            self.notify("Select a binding in Ports first", severity="warning", timeout=3)
            return
        key = ports.table.selected_key or ""
        binding = self.model.bindings.get(key) if self.model is not None else None
        if binding is None:
            self.notify("Select a binding in Ports first", severity="warning", timeout=3)
            return
        selected = self._selected_part()
        if selected is None:
            return
        part, model, _ = selected
        container = model.container_of(binding)
        changes = self.changes_for(part.host)
        screen = ConfirmChange(binding, read_state=changes.read_state, preview=changes.preview,
                               apply=changes.apply, recreate=changes.recreate, container=container,
                               host=part.host)  # fmt: skip
        self.push_screen(screen, partial(self._changed_on, part.host))

    def _changed_on(self, host: str, done: object) -> None:
        """A form or confirmation closed: after a change, read that host again (all of them after a running read)."""
        if not done:
            return
        if self.reading:
            self.read_again = True
        else:
            self.start_read(hosts=[host])


def run_fleet_app(
    read_hosts: HostReader,
    hosts: Sequence[str],
    *,
    source: str | None = None,
    refresh: float | None = None,
    read_timeout: float = 30.0,
    changes: Callable[[str], HostChanges] | None = None,
) -> int:
    """Run the TUI over a fleet: live, or read-only on a fleet capture (`source`). Returns an exit status."""
    interval = (0.0 if source is not None else FLEET_REFRESH) if refresh is None else refresh
    return run_to_exit(
        FleetApp(read_hosts, hosts, refresh=interval, source=source, read_timeout=read_timeout, changes=changes)
    )


def capture_reader(load: Callable[[], Sequence[HostRead]], first: Sequence[HostRead] | None = None) -> HostReader:
    """A fleet capture's reads as `read_hosts` gives them, the hosts asked for: `first` (reads already loaded, to
    check the file before the screen opens) the first time, then the file read again each time."""
    waiting = [] if first is None else [first]

    def read(hosts: Collection[str] | None) -> Iterator[HostRead]:
        reads = waiting.pop() if waiting else load()
        return iter([r for r in reads if hosts is None or r.host in hosts])

    return read


def live_reader(dests: Sequence[Destination], *, timeout: float, sudo: bool) -> HostReader:
    """The hosts read over ssh (`core.fleet.read.read_fleet`, a thread each), the ones asked for."""

    def read(hosts: Collection[str] | None) -> Iterator[HostRead]:
        return read_fleet([d for d in dests if hosts is None or d.text in hosts], timeout=timeout, sudo=sudo)

    return read


def live_changes(dests: Sequence[Destination], *, timeout: float, sudo: bool) -> Callable[[str], HostChanges]:
    """How to change each host: portscope run there over the same ssh (`local`: this host's own way)."""
    by_text = {d.text: d for d in dests}
    return lambda host: host_changes(by_text[host], sudo=sudo, timeout=timeout)
