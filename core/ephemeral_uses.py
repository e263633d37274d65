"""What holds ports in the ephemeral range, one use per row: shared by the TUI's Ephemeral view and
`portscope ephemeral`."""

from __future__ import annotations

from dataclasses import dataclass

from portscope.core.ephemeral import EphemeralReport
from portscope.core.model import Snapshot


@dataclass(frozen=True, slots=True)
class RangeUse:
    """One use of a port in the ephemeral range."""

    what: str  # "docker" (engine chose it), "published" (user chose it), "listener", "outbound"
    port: int
    protocol: str
    who: str
    note: str
    binding: str | None = None
    pid: int | None = None


def range_uses(snap: Snapshot, report: EphemeralReport) -> list[RangeUse]:
    """What holds ports in the ephemeral range: Docker's picks, user picks, listeners, outbound sockets."""
    rng = report.range
    if rng is None:
        return []
    chosen = (
        ("docker", "Docker chose it (port left blank)", report.engine_chosen),
        ("published", "chosen inside the range: a client may take it first", report.user_chosen),
    )
    out = [
        RangeUse(
            what=what,
            port=b.host_port or 0,
            protocol=b.protocol,
            who=f"{b.container_name or b.target_ip}:{b.container_port or b.target_port}",
            note=note,
            binding=b.id,
        )
        for what, note, bindings in chosen
        for b in bindings
    ]
    inside = lambda port: rng.first <= port <= rng.last  # noqa: E731
    out += [
        RangeUse(
            what="listener",
            port=s.port,
            protocol=s.protocol,
            who=f"{s.process or '?'} ({s.pid or '?'})",
            note=f"listens on {s.address}",
            pid=s.pid,
        )
        for s in snap.sockets
        if inside(s.port)
    ]
    out += [
        RangeUse(
            what="outbound",
            port=c.local_port,
            protocol=c.protocol,
            who=f"{c.process or '?'} ({c.pid or '?'})",
            note="local end of a connection",
            pid=c.pid,
        )
        for c in snap.connections
        if inside(c.local_port)
    ]
    return out
