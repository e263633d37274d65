"""The header line and the banner of a fleet: hosts reachable, ports, findings; each host's read problems."""

from __future__ import annotations

from portscope.tui.cells import SEVERITY_MARK
from portscope.tui.fleet_model import FleetModel
from portscope.tui.header import banner_lines, taken_at_text


def fleet_header_parts(model: FleetModel) -> list[str]:
    """Hosts reachable of all, ports, findings by severity, the time of the newest read."""
    parts = model.parts
    reachable = model.reachable
    waiting = sum(1 for p in parts if p.read is None)
    hosts = f"{len(reachable)}/{len(parts)} hosts reachable" + (f", {waiting} reading" if waiting else "")
    counts = model.severity_counts()
    found = " ".join(f"{SEVERITY_MARK[s][0]} {n}" for s, n in counts.items() if n) or "no findings"
    out = [hosts, f"{model.count('ports')} ports", found]
    times = [p.read.snapshot for p in reachable if p.read is not None and p.read.snapshot is not None]
    if times:
        out.append(taken_at_text(max(times, key=lambda snap: snap.taken_at)))
    return out


def fleet_banner_lines(model: FleetModel) -> list[str]:
    """Each host that could not be read, and what each host's read could not see, named by host."""
    lines = []
    for part in model.parts:
        if part.read is not None and part.read.error:
            error = part.read.error
            lines.append(error if error.startswith(f"{part.host}:") else f"{part.host}: {error}")
        elif part.model is not None:
            lines += [f"{part.host}: {line}" for line in banner_lines(part.model.snap)]
    return lines
