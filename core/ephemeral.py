"""The ephemeral port range: who uses it, how full it is, and what Docker would hand out next."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from portscope.core.model import Binding, Container, PortRange, Snapshot


@dataclass(slots=True)
class EphemeralReport:
    """Usage of /proc/sys/net/ipv4/ip_local_port_range on this host."""

    range: PortRange | None
    reserved: tuple[PortRange, ...] = ()
    engine_chosen: list[Binding] = field(default_factory=list)  # host port left blank (-P, -p 80)
    user_chosen: list[Binding] = field(default_factory=list)  # explicit host port inside the range
    listeners: int = 0
    connections: int = 0
    top_processes: list[tuple[str, int]] = field(default_factory=list)  # (process, ports in range)
    used_ports: int = 0  # distinct ports in the range held by anything
    next_docker_ports: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return 0 if self.range is None else self.range.last - self.range.first + 1

    @property
    def fill(self) -> float:
        """Fraction of the range in use (0..1)."""
        return self.used_ports / self.size if self.size else 0.0


def _blank_requests(containers: list[Container]) -> set[tuple[str, str, int]]:
    return {(c.name, m.protocol, m.container_port) for c in containers for m in c.requested if not m.host_port}


def ephemeral_report(snap: Snapshot, bindings: list[Binding], predict: int = 5) -> EphemeralReport:
    """Count what lies in the range; predict Docker's next picks (it allocates upward from its last pick)."""
    rng = snap.host.ephemeral_range
    report = EphemeralReport(range=rng, reserved=snap.host.reserved_ports)
    if rng is None:
        return report
    inside = lambda port: port is not None and rng.first <= port <= rng.last  # noqa: E731
    blank = _blank_requests(snap.containers)
    used: set[int] = set()
    per_process: Counter[str] = Counter()
    for b in bindings:
        if not inside(b.host_port):
            continue
        used.add(b.host_port)  # type: ignore[arg-type]
        chosen_by_engine = (b.container_name, b.protocol, b.container_port) in blank
        (report.engine_chosen if chosen_by_engine else report.user_chosen).append(b)
    for s in snap.sockets:
        if inside(s.port):
            report.listeners += 1
            used.add(s.port)
            per_process[s.process or "?"] += 1
    for c in snap.connections:
        if inside(c.local_port):
            report.connections += 1
            used.add(c.local_port)
            per_process[c.process or "?"] += 1
    report.used_ports = len(used)
    report.top_processes = per_process.most_common(5)
    report.next_docker_ports = _predict(rng, snap.host.reserved_ports, used, report.engine_chosen, predict)
    return report


def _predict(rng: PortRange, reserved, used: set[int], engine_chosen: list[Binding], count: int) -> list[int]:
    """Docker's port allocator hands out the next free port after its last pick, wrapping at the end."""
    last = max((b.host_port or rng.first - 1 for b in engine_chosen), default=rng.first - 1)
    picks: list[int] = []
    port = last
    for _ in range(rng.last - rng.first + 1):
        port = port + 1 if port < rng.last else rng.first
        if port in used or any(r.first <= port <= r.last for r in reserved):
            continue
        picks.append(port)
        if len(picks) == count:
            break
    return picks
