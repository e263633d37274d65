"""The published ports of a snapshot: DNAT paths resolved, then joined with proxies and containers."""

from __future__ import annotations

from dataclasses import dataclass, field

from portscope.core.join import join
from portscope.core.model import Binding, Owner, Snapshot, UnreachableDnat
from portscope.core.resolve import Shadow, resolve


@dataclass(slots=True)
class Inventory:
    bindings: list[Binding] = field(default_factory=list)
    unreachable: list[UnreachableDnat] = field(default_factory=list)
    shadows: list[Shadow] = field(default_factory=list)


def build_inventory(snap: Snapshot, catches: bool = True) -> Inventory:
    """Every binding on the host and every DNAT that carries none (`catches`: keep what diagnosis needs)."""
    resolution = resolve(snap.tables, snap.host.addresses, catches=catches)
    owner: Owner = "podman" if snap.engine.name and "podman" in snap.engine.name.lower() else "docker"
    bindings = join(resolution.bindings, snap.sockets, snap.containers, engine_owner=owner)
    return Inventory(bindings=bindings, unreachable=resolution.unreachable, shadows=resolution.shadows)
