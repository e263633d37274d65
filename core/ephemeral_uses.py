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
    out = [
        RangeUse(
            what="docker",
            port=b.host_port or 0,
            protocol=b.protocol,
            who=f"{b.container_name or b.target_ip}:{b.container_port or b.target_port}",
            note="Docker chose it (port left blank)",
            binding=b.id,
        )
        for b in report.engine_chosen
    ]
    out += [
        RangeUse(
            what="published",
            port=b.host_port or 0,
            protocol=b.protocol,
            who=f"{b.container_name or b.target_ip}:{b.container_port or b.target_port}",
            note="chosen inside the range: a client may take it first",
            binding=b.id,
        )
        for b in report.user_chosen
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
