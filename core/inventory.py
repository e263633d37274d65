"""The published ports of a snapshot: DNAT paths resolved, then joined with proxies and containers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from portscope.core.join import join
from portscope.core.model import Binding, Owner, Snapshot, UnreachableDnat
from portscope.core.resolve import Resolution, Shadow, resolve


@dataclass(slots=True)
class Inventory:
    bindings: list[Binding] = field(default_factory=list)
    unreachable: list[UnreachableDnat] = field(default_factory=list)
    shadows: list[Shadow] = field(default_factory=list)


def build_inventory(snap: Snapshot, catches: bool = True, resolution: Resolution | None = None) -> Inventory:
    """Every binding on the host and every DNAT that carries none (`catches`: keep what diagnosis needs).

    `resolution`: one made earlier of these very tables and addresses, reused (it is left as it is).
    """
    if resolution is None:
        resolution = resolve(snap.tables, snap.host.addresses, catches=catches)
    else:
        resolution = Resolution(
            bindings=[_fresh(b) for b in resolution.bindings],
            unreachable=list(resolution.unreachable),
            shadows=list(resolution.shadows),
        )
    owner: Owner = "podman" if snap.engine.name and "podman" in snap.engine.name.lower() else "docker"
    bindings = join(resolution.bindings, snap.sockets, snap.containers, engine_owner=owner)
    return Inventory(bindings=bindings, unreachable=resolution.unreachable, shadows=resolution.shadows)


def _fresh(binding: Binding) -> Binding:
    """A copy that joining can fill in (carriers, sockets, container) without touching the original."""
    return replace(
        binding, carriers=list(binding.carriers), sockets=list(binding.sockets), rules=list(binding.rules),
        hooks=list(binding.hooks),
    )  # fmt: skip
