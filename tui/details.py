"""Pure detail texts: the full evidence behind one row of any view (Rich Text, no Textual)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.text import Text

from portscope.core.findings import Finding
from portscope.core.model import Binding, Container, Rule, Socket, bracket
from portscope.core.printable import printable
from portscope.tui.cells import SEVERITY_MARK
from portscope.tui.data import (
    Model,
    host_text,
    mapping_text,
    rule_key,
    rule_where,
    socket_key,
    target_text,
)


class Doc:
    """A small builder for detail texts: headings, `label: value` lines and indented blocks.

    Everything added is host text shown as text: Rich `Text` (no markup parsing), control
    characters made visible (`core.printable`); only the builder's own line breaks break lines.
    """

    def __init__(self) -> None:
        self.text = Text()

    def add(self, text: object, style: str = "") -> None:
        self.text.append(printable(text), style=style)

    def title(self, text: str, style: str = "bold") -> None:
        self.add(text, style)
        self.text.append("\n")

    def field(self, label: str, value: object, style: str = "") -> None:
        self.text.append(f"  {label:<12}", style="dim")
        self.add(value, style)
        self.text.append("\n")

    def heading(self, text: str) -> None:
        self.text.append("\n")
        self.add(text, "bold underline")
        self.text.append("\n")

    def line(self, text: str, style: str = "", indent: int = 2) -> None:
        self.add(" " * indent + text, style)
        self.text.append("\n")

    def rules(self, rules: Iterable[Rule]) -> None:
        rules = list(rules)
        if not rules:
            self.line("(none)", "dim")
        for r in rules:
            self.add(f"  {rule_where(r)}: ", style="cyan")
            self.add(r.text)
            self.text.append("\n")

    def processes(self, sockets: Iterable[Socket]) -> None:
        sockets = list(sockets)
        if not sockets:
            self.line("(none)", "dim")
        for s in sockets:
            self.add(f"  pid {s.pid if s.pid is not None else '?'} {s.process or '?'}", style="cyan")
            if s.user:
                self.add(f" (user {s.user})")
            self.add(f" on {bracket(s.address)}:{s.port}/{s.protocol}: ")
            self.add(" ".join(s.cmdline) or "(command line hidden)")
            self.text.append("\n")

    def findings(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            mark, style = SEVERITY_MARK[f.severity]
            self.add(f"  {mark} {f.severity} ", style=style)
            self.add(f.title)
            self.text.append("\n    fix: ", style="green")
            self.add(f.fix)
            self.text.append("\n")


def binding_detail(model: Model, key: str) -> Text:
    b = model.bindings[key]
    doc = Doc()
    doc.title(f"{host_text(b)} → {target_text(b)}")
    doc.field("id", b.id)
    doc.field("owner", b.owner)
    doc.field("carried by", " + ".join(b.carriers) or "nothing", "" if b.carriers else "bold red")
    doc.field("caught on", ", ".join(b.hooks) or "-")
    _reach_fields(doc, b)
    doc.field("engine", "reports it in force" if b.reported_by_engine else "does not report it")
    container = model.container_of(b)
    doc.heading("Container")
    if container is not None:
        _container_fields(doc, container)
    else:
        doc.line(b.container_name or "(no container: the target is not a known container)", "dim")
    doc.heading(f"Rules ({len(b.rules)}: entry jumps … the DNAT)")
    doc.rules(b.rules)
    doc.heading("Processes")
    doc.processes(b.sockets)
    found = model.findings_by_binding.get(b.id, [])
    if found:
        doc.heading("Findings")
        doc.findings(found)
    return doc.text


def _reach_fields(doc: Doc, b: Binding) -> None:
    """Where the binding's DNAT is reached from, and the rules that keep portscope from being sure."""
    reach = b.reach
    if reach is None:
        doc.field("reached", "- (no DNAT rule carries it)", "dim")
        return
    doc.field("reached", reach.summary())
    for n, rule in enumerate(reach.uncertain_rules):
        decided = f"{rule_where(rule)}: {rule.text}" if rule is not None else "a rule set too complex to model exactly"
        doc.field("uncertain" if n == 0 else "", f"decided by {decided}", "yellow")


def _container_fields(doc: Doc, c: Container) -> None:
    doc.field("name", c.name)
    doc.field("id", c.id[:12])
    doc.field("image", c.image)
    doc.field("state", c.state, "green" if c.state == "running" else "yellow")
    nets = ", ".join(f"{n.name} {' '.join(ip for ip in (n.ipv4, n.ipv6) if ip) or '-'}" for n in c.networks)
    doc.field("networks", nets or c.network_mode)


def container_detail(model: Model, key: str) -> Text:
    c = model.containers[key]
    doc = Doc()
    doc.title(c.name)
    _container_fields(doc, c)
    doc.field("full id", c.id)
    doc.field("net mode", c.network_mode)
    doc.field("publish all", "yes (-P)" if c.publish_all else "no")
    doc.heading("Requested (HostConfig)")
    for m in c.requested or ():
        doc.line(mapping_text(m, True))
    if not c.requested:
        doc.line("(none)", "dim")
    doc.heading("In force (NetworkSettings)")
    for m in c.in_force or ():
        doc.line(mapping_text(m, False))
    if not c.in_force:
        doc.line("(none)", "dim" if not c.requested or c.state != "running" else "yellow")
    mine = [b for b in model.bindings.values() if b.container_id == c.id]
    doc.heading("Bindings on this host")
    for b in mine:
        doc.line(f"{host_text(b)} → {target_text(b)}  ({' + '.join(b.carriers) or 'nothing'})")
    if not mine:
        doc.line("(none)", "dim")
    found = [f for f in model.findings if f.container == c.name]
    if found:
        doc.heading("Findings")
        doc.findings(found)
    return doc.text


def finding_detail(model: Model, key: str) -> Text:
    f = model.conflicts[key]
    mark, style = SEVERITY_MARK[f.severity]
    doc = Doc()
    doc.title(f"{mark} {f.severity.upper()}  {f.title}", f"bold {style}")
    doc.field("kind", f.kind)
    if f.port is not None:
        doc.field("port", f"{f.port}/{f.protocol}")
    if f.container:
        doc.field("container", f.container)
    doc.heading("Explanation")
    doc.line(f.explanation)
    doc.heading("Fix (press c to copy)")
    doc.line(f.fix, "bold green")
    doc.heading("Evidence: rules")
    doc.rules(f.rules)
    doc.heading("Evidence: processes")
    doc.processes(f.processes)
    if f.bindings:
        doc.heading("Bindings")
        for bid in f.bindings:
            doc.line(bid)
    return doc.text


def range_detail(model: Model, key: str) -> Text:
    use = model.range_uses[key]
    rep = model.ephemeral
    doc = Doc()
    doc.title(f"{use.port}/{use.protocol}: {use.what}")
    doc.field("who", use.who)
    doc.field("note", use.note)
    if use.binding:
        doc.field("binding", use.binding)
    if use.pid is not None:
        socks = [s for s in model.snap.sockets if s.pid == use.pid]
        if socks:
            doc.heading("Process")
            doc.processes(socks[:1])
    doc.heading("The range")
    if rep.range is not None:
        doc.field("range", f"{rep.range.first}-{rep.range.last} ({rep.size} ports)")
    doc.field("in use", f"{rep.used_ports} ports ({rep.fill:.1%})")
    doc.field("reserved", ", ".join(str(r) for r in rep.reserved) or "none")
    doc.field("next picks", " ".join(str(p) for p in rep.next_docker_ports) or "-")
    return doc.text


def listener_detail(model: Model, key: str) -> Text:
    s = model.listeners[key]
    doc = Doc()
    doc.title(f"{bracket(s.address)}:{s.port}/{s.protocol} ({s.family})")
    doc.field("pid", s.pid if s.pid is not None else "? (not root: hidden)")
    doc.field("process", s.process or "?")
    doc.field("command", " ".join(s.cmdline) or "-")
    if s.proxy is not None:
        p = s.proxy
        doc.field(
            "proxies", f"{p.proto} {bracket(p.host_ip)}:{p.host_port} → {bracket(p.container_ip)}:{p.container_port}"
        )
    same = [b for b in model.bindings.values() if b.protocol == s.protocol and b.host_port == s.port]
    doc.heading("Bindings on this port")
    for b in same:
        doc.line(f"{host_text(b)} → {target_text(b)}  {b.container_name or ''}")
    if not same:
        doc.line("(none)", "dim")
    found = [f for f in model.findings if any(socket_key(p) == key.split("#")[0] for p in f.processes)]
    if found:
        doc.heading("Findings")
        doc.findings(found)
    return doc.text


def rule_detail(model: Model, key: str) -> Text:
    r = model.rules[key]
    doc = Doc()
    doc.title(rule_where(r))
    doc.line(r.text, "bold")
    doc.field("verdict", r.verdict)
    if r.jump:
        doc.field("jumps to", r.jump)
    if r.nat is not None:
        doc.field("to", f"{r.nat.address or '(this host)'}{':' + str(r.nat.ports) if r.nat.ports else ''}")
    if r.comment:
        doc.field("comment", r.comment)
    if r.line is not None:
        doc.field("source line", r.line)
    users = [bid for bid, keys in model.binding_rules.items() if rule_key(r) in keys]
    doc.heading("Bindings that pass this rule")
    for bid in users:
        doc.line(bid)
    if not users:
        doc.line("(none)", "dim")
    for u in model.inventory.unreachable:
        if u.rule is r:
            doc.heading(f"Not a binding: {u.kind}")  # shadowed, virtual-ip or unreachable
            doc.line(u.reason, "yellow")
    return doc.text


DETAILS: dict[str, Callable[[Model, str], Text]] = {
    "ports": binding_detail,
    "containers": container_detail,
    "conflicts": finding_detail,
    "ephemeral": range_detail,
    "listeners": listener_detail,
    "rules": rule_detail,
}


def detail(model: Model, view: str, key: str) -> Text:
    """The full evidence behind the row `key` of `view`."""
    try:
        return DETAILS[view](model, key)
    except KeyError:
        return Text("(gone since the last read)", style="dim")


def copy_text(model: Model, view: str, key: str) -> str | None:
    """What `c` copies for a row: a finding's fix, else the row's most useful identifier."""
    if view == "conflicts" and key in model.conflicts:
        return model.conflicts[key].fix
    if view == "ports" and key in model.bindings:
        b: Binding = model.bindings[key]
        found = model.findings_by_binding.get(b.id)
        return found[0].fix if found else b.id
    if view == "containers" and key in model.containers:
        return model.containers[key].id
    if view == "listeners" and key in model.listeners:
        s = model.listeners[key]
        return " ".join(s.cmdline) or (s.process or "")
    if view == "rules" and key in model.rules:
        return model.rules[key].text
    if view == "ephemeral" and key in model.range_uses:
        return str(model.range_uses[key].port)
    return None
