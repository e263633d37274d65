"""The fleet for the TUI: each host's own model (`tui.data.build_model`) merged into one (no Textual, no I/O).

A host's rows keep their keys, prefixed by the host (`h2 ipv4/tcp/0.0.0.0:8080->…`), so they stay stable across
re-reads; each view gains a HOST column (after a leading mark column), the Ports view's HOST column (the
published address) becomes PUBLISHED, and the Hosts view has a row per host. Everything here runs in the read
worker; the main thread only diffs the merged rows into the tables.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Sequence
from dataclasses import dataclass, field

from portscope.core.fleet.read import HostRead
from portscope.core.live import same_facts
from portscope.core.model import Binding
from portscope.tui.cells import SEVERITY_MARK, Cell, Column, Row, clip, column_widths, mark_cell
from portscope.tui.data import COLUMNS, VIEWS, Model, build_model, search_text, worst
from portscope.tui.header import backends_text, engine_text

HOSTS = "hosts"
HOSTS_TITLE = "Hosts"
HOST_COLUMN = Column("fleet-host", "HOST")
HOSTS_COLUMNS: tuple[Column, ...] = (
    Column("mark", "!"),
    Column("host", "HOST"),
    Column("reachable", "REACHABLE"),
    Column("backends", "BACKENDS"),
    Column("engine", "ENGINE"),
    Column("ports", "PORTS"),
    Column("errors", "ERRORS"),
    Column("warnings", "WARNINGS"),
    Column("read", "READ"),
    Column("error", "ERROR"),  # last: a long line runs off the right edge
)
ERROR_WIDTH = 60  # the ERROR cell is cut here; the detail pane shows the whole line


def host_at(view: str) -> int:
    """Where the HOST column goes in `view`: after a leading mark column, else first."""
    return 1 if COLUMNS[view][0].key == "mark" else 0


def fleet_columns(view: str) -> tuple[Column, ...]:
    """`view`'s columns in a fleet: HOST added, the Ports view's own HOST (the published address) renamed."""
    if view == HOSTS:
        return HOSTS_COLUMNS
    columns = [Column(c.key, "PUBLISHED") if view == "ports" and c.key == "host" else c for c in COLUMNS[view]]
    at = host_at(view)
    return (*columns[:at], HOST_COLUMN, *columns[at:])


def fleet_key(host: str, key: str) -> str:
    """A host's row key in the fleet (destinations hold no whitespace)."""
    return f"{host} {key}"


@dataclass(slots=True)
class HostPart:
    """One host of the fleet: its last read (None: not read yet), its model (None: no snapshot), and its rows
    with the host added, keyed for the fleet."""

    host: str
    index: int  # its place in the order the hosts were given
    read: HostRead | None = None
    model: Model | None = None
    rows: dict[str, list[Row]] = field(default_factory=dict)
    widths: dict[str, tuple[int, ...]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # fleet key -> the host model's own key
    bindings: dict[str, Binding] = field(default_factory=dict)  # by fleet key
    binding_rules: dict[str, frozenset[str]] = field(default_factory=dict)  # fleet keys of bindings and rules

    @property
    def state(self) -> str:
        """`reading…` (never read yet), `yes` or `no`."""
        if self.read is None:
            return "reading…"
        return "yes" if self.read.reachable else "no"


def host_model(read: HostRead, previous: Model | None) -> Model | None:
    """The host's model for a read: None without a snapshot; the previous one when the host is as it was."""
    if read.snapshot is None:
        return None
    if previous is not None and same_facts(previous.snap, read.snapshot):
        return previous
    return build_model(read.snapshot, previous)


def host_part(host: str, index: int, read: HostRead | None, previous: HostPart | None = None) -> HostPart:
    """A host's part of the fleet for its latest read; rows made again only when the host's model changed."""
    model = host_model(read, previous.model if previous else None) if read is not None else None
    part = HostPart(host=host, index=index, read=read, model=model)
    if previous is not None and model is not None and previous.model is model:
        part.rows, part.widths, part.origin = dict(previous.rows), previous.widths, previous.origin
        part.bindings, part.binding_rules = previous.bindings, previous.binding_rules
    elif model is not None:
        _wrap(part, model)
    part.rows[HOSTS] = [host_row(part)]
    return part


def _wrap(part: HostPart, model: Model) -> None:
    host = part.host
    cell = Cell(host, sort=(part.index,))
    search = f" {host.casefold()}"
    for view in VIEWS:
        at = host_at(view)
        rows = []
        for row in model.rows.get(view, ()):
            key = fleet_key(host, row.key)
            part.origin[key] = row.key
            cells = (*row.cells[:at], cell, *row.cells[at:])
            rows.append(Row(key=key, cells=cells, search=row.search + search, order=(part.index, *row.order),
                            host=host))  # fmt: skip
        part.rows[view] = rows
        widths = model.widths[view]
        part.widths[view] = (*widths[:at], cell.width, *widths[at:])
    part.bindings = {fleet_key(host, k): b for k, b in model.bindings.items()}
    part.binding_rules = {
        fleet_key(host, k): frozenset(fleet_key(host, r) for r in rules) for k, rules in model.binding_rules.items()
    }


def host_row(part: HostPart) -> Row:
    """The Hosts view's row of a host: reachable, backends, engine, ports, findings, read time, error."""
    read, model = part.read, part.model
    order = (part.index,)
    name = Cell(part.host, sort=order)
    if read is None or model is None:
        pending = read is None
        state = Cell(part.state, "dim italic" if pending else "bold red")
        error = "" if pending else (read.error if read is not None and read.error else "not read")
        dash = Cell("-", "dim")
        cells = (
            mark_cell(None if pending else "error"),
            name,
            state,
            dash,
            dash,
            Cell("-", "dim", sort=(-1,)),
            Cell("-", "dim", sort=(-1,)),
            Cell("-", "dim", sort=(-1,)),
            Cell(_seconds(read), "dim", sort=(read.seconds if read else -1.0,)),
            Cell(clip(error, ERROR_WIDTH), "red"),
        )
        search = search_text(part.host, part.state, error)
        return Row(key=part.host, cells=cells, search=search, order=order, host=part.host)
    snap = model.snap
    counts = model.severity_counts()
    worst_found = worst(model.findings)
    ports = model.count("ports")
    cells = (
        mark_cell(worst_found),
        name,
        Cell("yes", "green"),
        Cell(backends_text(snap)),
        Cell(engine_text(snap), "" if snap.engine.reachable else "yellow"),
        Cell(str(ports), sort=(ports,)),
        _count(counts["error"], "error"),
        _count(counts["warning"], "warning"),
        Cell(_seconds(read), sort=(read.seconds,)),
        Cell(""),
    )
    search = search_text(*(c.text for c in cells), snap.host.hostname)
    return Row(key=part.host, cells=cells, search=search, order=order, host=part.host)


def _count(n: int, severity: str) -> Cell:
    mark, style = SEVERITY_MARK[severity]
    return Cell(f"{mark} {n}" if n else "0", style if n else "dim", sort=(n,))


def _seconds(read: HostRead | None) -> str:
    return "-" if read is None else f"{read.seconds:.2f} s"


@dataclass(slots=True)
class FleetModel:
    """Every host's rows in one model, as the views show a single host's (`rows`, `widths`, `count`)."""

    parts: list[HostPart]
    rows: dict[str, list[Row]] = field(default_factory=dict)
    widths: dict[str, tuple[int, ...]] = field(default_factory=dict)
    bindings: ChainMap[str, Binding] = field(default_factory=ChainMap)
    binding_rules: ChainMap[str, frozenset[str]] = field(default_factory=ChainMap)

    def count(self, view: str) -> int:
        return len(self.rows.get(view, ()))

    def part(self, host: str) -> HostPart | None:
        return next((p for p in self.parts if p.host == host), None)

    def locate(self, view: str, key: str) -> tuple[HostPart, str] | None:
        """The host part a row of `view` comes from, and the row's key in that host's own model."""
        if view == HOSTS:
            part = self.part(key)
            return None if part is None else (part, key)
        for part in self.parts:
            local = part.origin.get(key)
            if local is not None:
                return part, local
        return None

    @property
    def reachable(self) -> list[HostPart]:
        return [p for p in self.parts if p.model is not None]

    def severity_counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for part in self.reachable:
            assert part.model is not None
            for severity, n in part.model.severity_counts().items():
                counts[severity] += n
        return counts


def merge(parts: Sequence[HostPart]) -> FleetModel:
    """The fleet model of `parts` (in the order the hosts were given)."""
    model = FleetModel(parts=sorted(parts, key=lambda p: p.index))
    for view in (*VIEWS, HOSTS):
        rows = [row for part in model.parts for row in part.rows.get(view, ())]
        model.rows[view] = rows
        columns = fleet_columns(view)
        if view == HOSTS:
            model.widths[view] = column_widths(columns, rows)
            continue
        widths = list(column_widths(columns, ()))  # the labels'
        for part in model.parts:
            for i, width in enumerate(part.widths.get(view, ())):
                widths[i] = max(widths[i], width)
        model.widths[view] = tuple(widths)
    model.bindings = ChainMap(*(p.bindings for p in model.parts))
    model.binding_rules = ChainMap(*(p.binding_rules for p in model.parts))
    return model


def pending(hosts: Sequence[str]) -> FleetModel:
    """The fleet before any host has answered: a Hosts row each, `reading…`."""
    return merge([host_part(host, index, None) for index, host in enumerate(hosts)])
