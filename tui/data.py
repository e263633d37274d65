"""Pure data for the TUI: core records turned into keyed table rows (no Textual, no I/O).

`build_model(snap)` runs core's analyses and builds every view's rows; the app calls it in a
worker thread, so the main thread only diffs rows into tables.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from portscope.core.diagnose.run import diagnose
from portscope.core.ephemeral import EphemeralReport, ephemeral_report
from portscope.core.ephemeral_uses import RangeUse, range_uses
from portscope.core.findings import SEVERITY_ORDER, Finding
from portscope.core.inventory import Inventory, build_inventory
from portscope.core.model import Binding, Container, PortMapping, Rule, Snapshot, Socket, bracket, port_text
from portscope.core.resolve import Resolution, resolve
from portscope.tui.cells import SEVERITY_MARK, Cell, Column, Row, clip, column_widths, mark_cell

VIEWS: tuple[str, ...] = ("ports", "containers", "conflicts", "ephemeral", "listeners", "rules")
TITLES: dict[str, str] = {
    "ports": "Ports",
    "containers": "Containers",
    "conflicts": "Conflicts",
    "ephemeral": "Ephemeral",
    "listeners": "Listeners",
    "rules": "Rules",
}


COLUMNS: dict[str, tuple[Column, ...]] = {
    "ports": (
        Column("mark", "!"),
        Column("host", "HOST"),
        Column("target", "CONTAINER PORT"),
        Column("container", "CONTAINER"),
        Column("owner", "OWNER"),
        Column("carried", "CARRIED BY"),
        Column("state", "STATE"),
        Column("issues", "ISSUES"),
        Column("reach", "REACH"),  # last: a long summary runs off the right edge, not the issues
    ),
    "containers": (
        Column("mark", "!"),
        Column("name", "NAME"),
        Column("image", "IMAGE"),
        Column("state", "STATE"),
        Column("networks", "NETWORKS"),
        Column("requested", "REQUESTED"),
        Column("in_force", "IN FORCE"),
    ),
    "conflicts": (
        Column("severity", "SEVERITY"),
        Column("kind", "KIND"),
        Column("port", "PORT"),
        Column("container", "CONTAINER"),
        Column("title", "TITLE"),
    ),
    "ephemeral": (
        Column("what", "WHAT"),
        Column("port", "PORT"),
        Column("who", "WHO"),
        Column("note", "NOTE"),
    ),
    "listeners": (
        Column("mark", "!"),
        Column("address", "ADDRESS"),
        Column("proto", "PROTO"),
        Column("pid", "PID"),
        Column("process", "PROCESS"),
        Column("published", "PUBLISHED TO"),
        Column("command", "COMMAND"),
    ),
    "rules": (
        Column("mark", "▶"),
        Column("source", "BACKEND"),
        Column("chain", "TABLE/CHAIN"),
        Column("position", "#"),
        Column("verdict", "VERDICT"),
        Column("rule", "RULE"),
    ),
}


# --------------------------------------------------------------------------- small helpers


@functools.lru_cache(maxsize=1 << 16)  # the same few thousand addresses come back in every read
def ip_key(ip: str) -> tuple[int, bytes]:
    """Sort addresses numerically (IPv4 before IPv6); anything else last."""
    try:
        a = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return (9, ip.encode())
    return (a.version, a.packed)


def host_text(b: Binding) -> str:
    return f"{bracket(b.host_ip)}:{port_text(b.host_port, b.host_port_last)}/{b.protocol}"


def target_text(b: Binding) -> str:
    return f"{bracket(b.target_ip)}:{port_text(b.target_port, b.target_port_last)}" if b.target_ip else "?"


def carried_text(b: Binding) -> tuple[str, str]:
    """(text, style) for the carriers: DNAT, proxy, both — or nothing (red)."""
    if "dnat" in b.carriers and "proxy" in b.carriers:
        return "both", ""
    if "dnat" in b.carriers:
        return "DNAT", ""
    if "proxy" in b.carriers:
        return "proxy", ""
    return "nothing", "bold red"


REACH_WIDTH = 40  # the REACH cell is cut here; the detail pane shows the whole summary


def reach_text(b: Binding) -> tuple[str, str]:
    """(text, style) for where a binding's DNAT is reached from: blank from everywhere (or no DNAT).

    A restricted reach shows its summary (`not from docker0`); one portscope cannot model exactly
    (a rule with matches it does not read) is marked `uncertain`.
    """
    reach = b.reach
    if reach is None:
        return "", ""
    text = reach.summary() if reach.restricted else ""
    if reach.certain:
        return text, ""
    return (f"(uncertain) {text}" if text else "uncertain"), "yellow"


def rule_key(r: Rule) -> str:
    """A rule's stable key: backend/family/table/chain/text (positions shift when a rule above goes)."""
    return f"{r.backend}/{r.family}/{r.table}/{r.chain}/{r.text}"


def rule_where(r: Rule) -> str:
    return f"{r.backend} {r.family} {r.table}/{r.chain} #{r.position}"


def socket_key(s: Socket) -> str:
    return f"{s.family}/{s.protocol}/{bracket(s.address)}:{s.port}/{s.pid if s.pid is not None else '?'}"


def finding_key(f: Finding) -> str:
    return f"{f.kind}|{f.title}"


def mapping_text(m: PortMapping, requested: bool) -> str:
    """`127.0.0.1:9000→80/tcp`; a port left to Docker shows as `auto`."""
    host = m.host_port or "auto"
    ip = f"{bracket(m.host_ip)}:" if m.host_ip and not (requested and m.host_ip in ("0.0.0.0", "::")) else ""
    return f"{ip}{host}→{m.container_port}/{m.protocol}"


def worst(findings: Iterable[Finding]) -> str | None:
    """The most severe severity among `findings`, or None."""
    return min((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__, default=None)


def _unique(key: str, seen: set[str]) -> str:
    """`key`, or `key#2`, `key#3`… when taken: keys must be unique within a table."""
    out, n = key, 1
    while out in seen:
        n += 1
        out = f"{key}#{n}"
    seen.add(out)
    return out


def search_text(*parts: object) -> str:
    """What `/` searches in a row: the parts given, lower-case."""
    return " ".join(str(p) for p in parts if p not in (None, "")).casefold()


# --------------------------------------------------------------------------- the model


class PortInputs(NamedTuple):
    """What a Ports row shows of its binding, findings and container. A row whose inputs equal the last
    model's is that model's row: after a rule change the binding's Rule and Reach objects are new, but
    what the row shows of them (no rule, the reach's text) is compared."""

    id: str
    family: str
    protocol: str
    host_ip: str
    host_port: int | None
    host_port_last: int | None
    target_ip: str
    target_port: int | None
    target_port_last: int | None
    owner: str
    carriers: tuple[str, ...]
    container_id: str | None
    container_name: str | None
    processes: tuple[tuple[str | None, int | None], ...]
    hooks: tuple[str, ...]
    reach: tuple[str, str]  # text, style
    severity: str | None
    issues: str
    state: str
    state_style: str


class ConflictInputs(NamedTuple):
    """What a Conflicts row shows of its finding (not its rules or fix: after a rule change a finding may
    name other Rule objects, or the same rules at other positions, and still show the same)."""

    order: tuple
    severity: str
    kind: str
    port: int | None
    protocol: str | None
    container: str | None
    title: str
    bindings: tuple[str, ...]
    processes: tuple[tuple[str | None, int | None], ...]


@dataclass(slots=True)
class Model:
    """Everything the views show for one snapshot, indexed by row key."""

    snap: Snapshot
    inventory: Inventory
    findings: list[Finding]
    ephemeral: EphemeralReport
    rows: dict[str, list[Row]] = field(default_factory=dict)
    widths: dict[str, tuple[int, ...]] = field(default_factory=dict)
    bindings: dict[str, Binding] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    conflicts: dict[str, Finding] = field(default_factory=dict)
    range_uses: dict[str, RangeUse] = field(default_factory=dict)
    listeners: dict[str, Socket] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    findings_by_binding: dict[str, list[Finding]] = field(default_factory=dict)
    binding_rules: dict[str, frozenset[str]] = field(default_factory=dict)
    resolution: Resolution | None = None  # the rules' own, before joining: the next model may reuse it
    reach_texts: dict[int, tuple[str, str]] = field(default_factory=dict)  # id(Reach of `resolution`) -> text
    port_inputs: dict[str, PortInputs] = field(default_factory=dict)  # Ports row key -> what its row shows
    conflict_inputs: dict[str, ConflictInputs] = field(default_factory=dict)  # the same for Conflicts rows

    def count(self, view: str) -> int:
        return len(self.rows.get(view, ()))

    def severity_counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            counts[f.severity] += 1
        return counts

    def container_of(self, b: Binding) -> Container | None:
        return self.containers.get(b.container_id or "")


def build_model(snap: Snapshot, previous: Model | None = None) -> Model:
    """Run core's inventory, diagnosis and ephemeral report; build every view's rows.

    When `previous` was built from the very same tables (a read of only containers or sockets), what
    depends on the rules alone — their resolution and the Rules view — is taken from it, not made again.
    A Ports or Conflicts row whose inputs equal `previous`'s (same binding, findings and container state;
    same finding at the same place) is `previous`'s row: a change rebuilds only the rows it touches.
    """
    same_rules = (
        previous is not None
        and previous.snap.tables is snap.tables
        and previous.snap.host.addresses == snap.host.addresses
    )
    kept = previous.resolution if same_rules and previous is not None else None
    resolution = kept or resolve_tables(snap)
    inv = build_inventory(snap, resolution=resolution)
    findings = diagnose(snap, inv)
    report = ephemeral_report(snap, inv.bindings)
    model = Model(snap=snap, inventory=inv, findings=findings, ephemeral=report, resolution=resolution)
    if kept is not None and previous is not None:
        model.reach_texts = previous.reach_texts  # keyed by the ids of `resolution`'s Reach objects, still alive
    by_binding: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        for bid in dict.fromkeys(f.bindings):
            by_binding[bid].append(f)
    model.findings_by_binding = dict(by_binding)
    model.containers = {c.id: c for c in snap.containers}
    model.rows["ports"] = _port_rows(model, previous)
    model.rows["containers"] = _container_rows(model)
    model.rows["conflicts"] = _conflict_rows(model, previous)
    model.rows["ephemeral"] = _range_rows(model)
    model.rows["listeners"] = _listener_rows(model)
    if kept is not None and previous is not None:  # copies: `release` empties the previous model's own
        model.rules = dict(previous.rules)
        model.rows["rules"] = list(previous.rows["rules"])
    else:
        model.rows["rules"] = _rule_rows(model, previous)
    model.widths = {
        view: previous.widths[view] if view == "rules" and kept is not None and previous is not None
        else column_widths(COLUMNS[view], rows)
        for view, rows in model.rows.items()
    }  # fmt: skip
    return model


def resolve_tables(snap: Snapshot) -> Resolution:
    """What the snapshot's DNAT rules carry, before joining (kept whole so a later model can reuse it)."""
    return resolve(snap.tables, snap.host.addresses)


def release(model: Model, chunk: int = 500) -> None:
    """Take apart what `build_model` made, a chunk at a time (from a worker thread).

    Dropping a large model at once is one long deallocation that holds the GIL and freezes the UI;
    between chunks the main thread gets its turn. The snapshot, which a loader may share between
    reads, is left whole.
    """
    lists = [*model.rows.values(), model.findings, model.inventory.bindings, model.inventory.shadows]
    for part in lists:
        while part:
            del part[-chunk:]
    maps = [model.bindings, model.containers, model.conflicts, model.range_uses, model.listeners, model.rules,
            model.findings_by_binding, model.binding_rules, model.port_inputs, model.conflict_inputs]  # fmt: skip
    for mapping in maps:
        keys = list(mapping)
        for start in range(0, len(keys), chunk):
            for key in keys[start : start + chunk]:
                del mapping[key]


def _port_rows(model: Model, previous: Model | None = None) -> list[Row]:
    old = _rows_by_key(previous, "ports")
    before = previous.port_inputs if previous is not None else {}
    same_rules = previous is not None and previous.resolution is model.resolution
    rows, seen = [], set()
    for b in model.inventory.bindings:
        key = _unique(b.id, seen)
        model.bindings[key] = b
        inputs = model.port_inputs[key] = _port_inputs(model, b)
        kept = _kept_row(old, before, key, inputs)
        rows.append(kept if kept is not None else _port_row(key, b, inputs))
        if kept is not None and same_rules and previous is not None and key in previous.binding_rules:
            model.binding_rules[key] = previous.binding_rules[key]  # the very same Rule objects
        else:
            model.binding_rules[key] = frozenset(rule_key(r) for r in b.rules)
    return rows


def _kept_row(old: dict[str, Row], before: Mapping[str, object], key: str, inputs: object) -> Row | None:
    """The previous model's row for `key` when it was made from the same inputs, else None."""
    return old.get(key) if key in before and before[key] == inputs else None


def _processes(sockets: Iterable[Socket]) -> tuple[tuple[str | None, int | None], ...]:
    return tuple((s.process, s.pid) for s in sockets)


def _processes_text(processes: Iterable[tuple[str | None, int | None]]) -> str:
    return " ".join(f"{process} {pid}" for process, pid in processes)


def _rows_by_key(model: Model | None, view: str) -> dict[str, Row]:
    return {row.key: row for row in model.rows.get(view, ())} if model is not None else {}


def _port_inputs(model: Model, b: Binding) -> PortInputs:
    found = model.findings_by_binding.get(b.id, [])
    container = model.container_of(b)
    if container is not None:
        state, state_style = container.state, "green" if container.state == "running" else "yellow"
    elif b.owner in ("docker", "podman") and b.container_id is None:
        state, state_style = "no container", "yellow"
    else:
        state, state_style = "-", "dim"
    if b.reach is None:
        reach = ("", "")
    else:  # the same rules give the same Reach objects: describe each once (see build_model)
        known = model.reach_texts.get(id(b.reach))
        reach = known if known is not None else reach_text(b)
        model.reach_texts[id(b.reach)] = reach
    return PortInputs(
        id=b.id,
        family=b.family,
        protocol=b.protocol,
        host_ip=b.host_ip,
        host_port=b.host_port,
        host_port_last=b.host_port_last,
        target_ip=b.target_ip,
        target_port=b.target_port,
        target_port_last=b.target_port_last,
        owner=b.owner,
        carriers=tuple(b.carriers),
        container_id=b.container_id,
        container_name=b.container_name,
        processes=_processes(b.sockets),
        hooks=tuple(b.hooks),
        reach=reach,
        severity=worst(found),
        issues=", ".join(dict.fromkeys(f.kind for f in found)),
        state=state,
        state_style=state_style,
    )


def _port_row(key: str, b: Binding, inputs: PortInputs) -> Row:
    """The row of binding `b`: everything it shows is in `inputs`."""
    sev, issues = inputs.severity, inputs.issues
    carried, carried_style = carried_text(b)
    reach, reach_style = inputs.reach
    cells = (
        mark_cell(sev),
        Cell(host_text(b), sort=(b.host_port if b.host_port is not None else -1, b.protocol, ip_key(b.host_ip))),
        Cell(target_text(b), sort=(ip_key(b.target_ip), b.target_port or 0)),
        Cell(b.container_name or "-", "" if b.container_name else "dim"),
        Cell(b.owner),
        Cell(carried, carried_style),
        Cell(inputs.state, inputs.state_style),
        Cell(issues, SEVERITY_MARK[sev][1] if sev else "", sort=(SEVERITY_ORDER.get(sev or "", 9), issues)),
        Cell(clip(reach, REACH_WIDTH), reach_style),
    )
    procs = _processes_text(inputs.processes)
    search = search_text(*(c.text for c in cells), inputs.id, b.family, b.container_id, procs, " ".join(b.hooks), reach)
    order = (b.host_port if b.host_port is not None else -1, b.protocol, ip_key(b.host_ip), b.family, key)
    return Row(key=key, cells=cells, search=search, order=order)


def _container_rows(model: Model) -> list[Row]:
    rows = []
    for c in model.containers.values():
        found = [f for f in model.findings if f.container == c.name]
        nets = ", ".join(f"{n.name} {n.ipv4 or n.ipv6 or '-'}" for n in c.networks) or c.network_mode
        requested = ", ".join(mapping_text(m, True) for m in c.requested) or "-"
        in_force = ", ".join(mapping_text(m, False) for m in c.in_force) or "-"
        missing = c.state == "running" and len(c.in_force) < len(c.requested)
        cells = (
            mark_cell(worst(found)),
            Cell(c.name),
            Cell(clip(c.image, 40)),
            Cell(c.state, "green" if c.state == "running" else "yellow"),
            Cell(clip(nets)),
            Cell(clip(requested), "dim" if requested == "-" else ""),
            Cell(clip(in_force), "yellow" if missing else ("dim" if in_force == "-" else "")),
        )
        search = search_text(*(cl.text for cl in cells), c.id, c.network_mode)
        rows.append(Row(key=c.id, cells=cells, search=search, order=(c.name, c.id)))
    return rows


def _conflict_rows(model: Model, previous: Model | None = None) -> list[Row]:
    """Conflicts in the diagnosis' order: by `Finding.sort_key`, then in the order they were found (the
    same order as their place in `model.findings`, and one a new finding does not shift for the others)."""
    old = _rows_by_key(previous, "conflicts")
    before = previous.conflict_inputs if previous is not None else {}
    rows, seen, found = [], set(), dict[str, int]()
    for f in model.findings:
        base = finding_key(f)
        found[base] = found.get(base, 0) + 1
        key = _unique(base, seen)
        model.conflicts[key] = f
        inputs = model.conflict_inputs[key] = ConflictInputs(
            order=(*f.sort_key, found[base]),
            severity=f.severity,
            kind=f.kind,
            port=f.port,
            protocol=f.protocol,
            container=f.container,
            title=f.title,
            bindings=tuple(f.bindings),
            processes=_processes(f.processes),
        )
        kept = _kept_row(old, before, key, inputs)
        rows.append(kept if kept is not None else _conflict_row(key, inputs))
    return rows


def _conflict_row(key: str, f: ConflictInputs) -> Row:
    mark, style = SEVERITY_MARK[f.severity]
    port = f"{f.port}/{f.protocol}" if f.port is not None else "-"
    cells = (
        Cell(f"{mark} {f.severity}", style, sort=f.order),
        Cell(f.kind),
        Cell(port, "" if f.port is not None else "dim", sort=(f.port if f.port is not None else -1,)),
        Cell(f.container or "-", "" if f.container else "dim"),
        Cell(clip(f.title, 64)),
    )
    procs = _processes_text(f.processes)
    search = search_text(*(c.text for c in cells), f.title, " ".join(f.bindings), procs)
    return Row(key=key, cells=cells, search=search, order=f.order)


_WHAT_ORDER = {"docker": 0, "published": 1, "listener": 2, "outbound": 3}
_WHAT_STYLE = {"docker": "cyan", "published": "yellow", "listener": "", "outbound": "dim"}


def _range_rows(model: Model) -> list[Row]:
    rows, seen = [], set()
    for use in range_uses(model.snap, model.ephemeral):
        key = _unique(f"{use.what}/{use.protocol}/{use.port}/{use.pid if use.pid is not None else '-'}", seen)
        model.range_uses[key] = use
        cells = (
            Cell(use.what, _WHAT_STYLE[use.what], sort=(_WHAT_ORDER[use.what],)),
            Cell(f"{use.port}/{use.protocol}", sort=(use.port, use.protocol)),
            Cell(clip(use.who)),
            Cell(use.note, "dim"),
        )
        search = search_text(*(c.text for c in cells), use.binding, use.pid)
        rows.append(
            Row(key=key, cells=cells, search=search, order=(_WHAT_ORDER[use.what], use.port, use.protocol, key))
        )
    return rows


def _listener_rows(model: Model) -> list[Row]:
    by_port: dict[tuple[str, int], list[Binding]] = defaultdict(list)
    for b in model.inventory.bindings:
        if b.host_port is not None:
            by_port[(b.protocol, b.host_port)].append(b)
    flagged: dict[str, str] = {}  # socket key -> worst severity of the findings that name it
    for f in model.findings:
        for s in f.processes:
            prev = flagged.get(socket_key(s))
            flagged[socket_key(s)] = f.severity if prev is None else worst_of(prev, f.severity)
    rows, seen = [], set()
    for s in model.snap.sockets:
        key = _unique(socket_key(s), seen)
        model.listeners[key] = s
        published = by_port.get((s.protocol, s.port), [])
        pub = ", ".join(dict.fromkeys(f"{'proxy' if s.proxy else 'DNAT'}→{b.container_name or b.target_ip}"
                                      for b in published))  # fmt: skip
        sev = flagged.get(socket_key(s))
        cells = (
            mark_cell(sev),
            Cell(f"{bracket(s.address)}:{s.port}", sort=(s.port, ip_key(s.address))),
            Cell(s.protocol + ("6" if s.family == "ipv6" else "")),
            Cell(str(s.pid) if s.pid is not None else "?", "" if s.pid is not None else "dim", sort=(s.pid or 0,)),
            Cell(s.process or "?", "" if s.process else "dim"),
            Cell(clip(pub), "cyan" if pub else "dim") if pub else Cell("-", "dim"),
            Cell(clip(" ".join(s.cmdline)) or "-", "dim" if not s.cmdline else ""),
        )
        search = search_text(*(c.text for c in cells), " ".join(s.cmdline), s.family)
        rows.append(Row(key=key, cells=cells, search=search, order=(s.port, s.protocol, ip_key(s.address), key)))
    return rows


def worst_of(a: str, b: str) -> str:
    return a if SEVERITY_ORDER[a] <= SEVERITY_ORDER[b] else b


def nat_tables(snap: Snapshot) -> list:
    """The tables that hold NAT chains: iptables `nat`, and nft tables with a chain of type nat."""
    return [t for t in snap.tables if t.name == "nat" or any(c.kind == "nat" for c in t.chains.values())]


_VERDICT_STYLE = {"dnat": "bold", "redirect": "bold", "jump": "cyan", "goto": "cyan", "return": "dim"}


def _rule_rows(model: Model, previous: Model | None = None) -> list[Row]:
    """Rules rows; one whose rule (by key: its chain and text) sits where it sat in `previous` is
    `previous`'s row, and one that only moved gets a new position and keeps its other cells."""
    old = _rows_by_key(previous, "rules")
    rows, seen = [], set()
    for t_index, table in enumerate(nat_tables(model.snap)):
        for c_index, chain in enumerate(table.chains.values()):
            for r in chain.rules:
                key = _unique(rule_key(r), seen)
                model.rules[key] = r
                order = (t_index, c_index, r.position)
                kept = old.get(key)
                if kept is not None and kept.order == order:
                    rows.append(kept)
                    continue
                position = Cell(str(r.position), sort=(r.position,))
                if kept is not None:  # moved: only its position is new (the last word of its search text)
                    cells = (*kept.cells[:3], position, *kept.cells[4:])
                    search = f"{kept.search.rpartition(' ')[0]} {position.text}"
                else:
                    cells = (
                        Cell("", sort=(1,)),
                        Cell(f"{r.backend} {r.family}"),
                        Cell(f"{r.table}/{r.chain}"),
                        position,
                        Cell(r.verdict, _VERDICT_STYLE.get(r.verdict, "")),
                        Cell(clip(r.text, 64)),
                    )
                    search = search_text(
                        *(c.text for c in cells if c is not position), r.text, r.comment, position.text
                    )
                rows.append(Row(key=key, cells=cells, search=search, order=order))
    return rows


def mark_rules(rows: Sequence[Row], marked: frozenset[str]) -> list[Row]:
    """Rules rows with those in `marked` (the selected binding's path) flagged and bold."""
    if not marked:
        return list(rows)
    out = []
    for row in rows:
        if row.key in marked:
            rest = row.cells[1:]
            cells = (Cell("▶", "bold magenta", sort=(0,)), *(Cell(c.text, f"{c.style} bold magenta", c.sort)
                                                             for c in rest))  # fmt: skip
            row = replace(row, cells=cells)
        out.append(row)
    return out
