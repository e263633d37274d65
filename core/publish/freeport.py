"""A host port for a blank `-p :80`: the lowest port of the ephemeral range that nothing holds, as Docker does."""

from __future__ import annotations

from collections.abc import Iterable

from portscope.core.model import Binding, Container, PortRange, Socket
from portscope.core.publish.errors import ConflictError
from portscope.core.publish.model import StoredBinding

DEFAULT_RANGE = PortRange(32768, 60999)


def taken_ports(
    protocol: str,
    sockets: Iterable[Socket],
    bindings: Iterable[Binding],
    containers: Iterable[Container],
    stored: Iterable[StoredBinding],
) -> set[int]:
    """Ports of `protocol` held by a listener, a binding of any owner, Docker's in-force ports or our state."""
    taken = {s.port for s in sockets if s.protocol == protocol}
    for b in bindings:
        if b.protocol in (protocol, "all") and b.host_port is not None:
            taken.update(range(b.host_port, (b.host_port_last or b.host_port) + 1))
    for c in containers:
        taken.update(int(m.host_port) for m in c.in_force if m.protocol == protocol and m.host_port.isdigit())
    taken.update(s.host_port for s in stored if s.protocol == protocol)
    return taken


def pick_port(rng: PortRange | None, reserved: Iterable[PortRange], taken: set[int]) -> int:
    """The lowest port of `rng` (Linux's default when unknown) that is neither taken nor reserved."""
    rng = rng or DEFAULT_RANGE
    blocked = set(taken)
    for r in reserved:
        blocked.update(range(r.first, r.last + 1))
    for port in range(max(rng.first, 1), rng.last + 1):
        if port not in blocked:
            return port
    raise ConflictError(f"every port of the ephemeral range {rng} is taken: give a host port")
