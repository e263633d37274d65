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
            "docker",
            b.host_port or 0,
            b.protocol,
            f"{b.container_name or b.target_ip}:{b.container_port or b.target_port}",
            "Docker chose it (port left blank)",
            binding=b.id,
        )
        for b in report.engine_chosen
    ]
    out += [
        RangeUse(
            "published",
            b.host_port or 0,
            b.protocol,
            f"{b.container_name or b.target_ip}:{b.container_port or b.target_port}",
            "chosen inside the range: a client may take it first",
            binding=b.id,
        )
        for b in report.user_chosen
    ]
    inside = lambda port: rng.first <= port <= rng.last  # noqa: E731
    out += [
        RangeUse("listener", s.port, s.protocol, f"{s.process or '?'} ({s.pid or '?'})", f"listens on {s.address}",
                 pid=s.pid)
        for s in snap.sockets
        if inside(s.port)
    ]  # fmt: skip
    out += [
        RangeUse("outbound", c.local_port, c.protocol, f"{c.process or '?'} ({c.pid or '?'})",
                 "local end of a connection", pid=c.pid)
        for c in snap.connections
        if inside(c.local_port)
    ]  # fmt: skip
    return out
