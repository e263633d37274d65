"""Filters of `portscope list`: by container, host port and protocol."""

from __future__ import annotations

from portscope.core.model import Binding


def filter_bindings(
    bindings: list[Binding], container: str | None = None, port: int | None = None, proto: str | None = None
) -> list[Binding]:
    """Bindings matching every given filter. A container matches by name or id prefix."""
    out = []
    for b in bindings:
        if container and not (b.container_name == container or (b.container_id or "").startswith(container)):
            continue
        if port is not None and not _has_port(b, port):
            continue
        if proto and b.protocol != proto:
            continue
        out.append(b)
    return out


def _has_port(b: Binding, port: int) -> bool:
    if b.host_port is None:
        return True
    return b.host_port <= port <= (b.host_port_last or b.host_port)
