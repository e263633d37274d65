"""Pure detail texts for a fleet: a row's evidence from its host's own model, and a host's read (no Textual)."""

from __future__ import annotations

from rich.text import Text

from portscope.core.printable import printable
from portscope.tui.details import Doc, copy_text, detail
from portscope.tui.fleet_model import HOSTS, FleetModel, HostPart
from portscope.tui.header import backends_text, engine_text, taken_at_text


def fleet_detail(model: FleetModel, view: str, key: str) -> Text:
    """The evidence behind a fleet row: the host's own detail of the row, under the host's name."""
    found = model.locate(view, key)
    if found is None:
        return Text("(gone since the last read)", style="dim")
    part, local = found
    if view == HOSTS:
        return host_detail(part)
    if part.model is None:
        return Text(f"{printable(part.host)}: not read", style="dim")
    out = Text()
    out.append("host ", style="dim")
    out.append(printable(part.host), style="bold cyan")
    out.append("\n")
    out.append_text(detail(part.model, view, local))
    return out


def fleet_copy_text(model: FleetModel, view: str, key: str) -> str | None:
    """What `c` copies for a fleet row: as for one host's row; for a host, its name (or its error)."""
    found = model.locate(view, key)
    if found is None:
        return None
    part, local = found
    if view == HOSTS:
        return part.read.error if part.read is not None and part.read.error else part.host
    return None if part.model is None else copy_text(part.model, view, local)


def host_detail(part: HostPart) -> Text:
    """A host's read: reachable or why not, what was read there, its findings and what the read could not see."""
    doc = Doc()
    doc.title(part.host)
    read, model = part.read, part.model
    if read is None:
        doc.field("reachable", "reading…", "dim italic")
        return doc.text
    doc.field("reachable", "yes" if model is not None else "no", "green" if model is not None else "bold red")
    doc.field("read in", f"{read.seconds:.2f} s")
    if model is None:
        doc.field("error", read.error or "not read", "red")
        return doc.text
    snap = model.snap
    doc.field("host name", snap.host.hostname)
    doc.field("kernel", snap.host.kernel or "-")
    doc.field("root", "yes" if snap.host.is_root else "no (rules and other users' processes hidden)")
    doc.field("taken at", taken_at_text(read.snapshot or snap))
    doc.field("backends", backends_text(snap))
    doc.field("engine", engine_text(snap) if snap.engine.reachable else f"no Docker: {snap.engine.reason or '-'}")
    doc.field("ports", model.count("ports"))
    counts = model.severity_counts()
    doc.field("findings", ", ".join(f"{n} {s}" for s, n in counts.items()) if any(counts.values()) else "none")
    if snap.warnings:
        doc.heading("Not read")
        for line in snap.warnings:
            doc.line(line, "yellow")
    doc.text.rstrip()
    return doc.text
