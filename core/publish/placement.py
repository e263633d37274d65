"""Place every stored binding on its target's current address; flag those whose container is stopped or gone."""

from __future__ import annotations

from dataclasses import dataclass, field

from portscope.core.model import Container, HostFacts, Snapshot
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.render import Placed
from portscope.core.publish.targets import bridge_for, container_address


@dataclass(slots=True)
class Placement:
    placed: list[Placed] = field(default_factory=list)
    moved: list[tuple[StoredBinding, str | None, str]] = field(default_factory=list)  # (binding, old ip, new ip)
    flagged: list[StoredBinding] = field(default_factory=list)  # waiting or orphaned: no rules
    notes: list[str] = field(default_factory=list)


def place_all(bindings: list[StoredBinding], snap: Snapshot) -> Placement:
    """Where each binding's rules point now. Updates `health`, `last_ip`, `bridge` and the container's
    id/name (a container re-created under the same name is followed) on the bindings themselves."""
    out = Placement()
    by_id = {c.id: c for c in snap.containers}
    by_name = {c.name: c for c in snap.containers}
    for b in bindings:
        if b.container_id is None:
            ip = b.target_ip or b.last_ip
            if ip:
                b.health, b.bridge = "ok", bridge_for(ip, snap.host)
                out.placed.append(Placed(b, ip, b.bridge))
            continue
        if not snap.engine.reachable:
            if b.health == "ok" and b.last_ip:
                out.placed.append(Placed(b, b.last_ip, b.bridge))
            out.notes.append(f"{b.id}: the engine did not answer ({snap.engine.reason}); kept {b.last_ip}")
            continue
        c = by_id.get(b.container_id) or (by_name.get(b.container_name) if b.container_name else None)
        if c is None:
            b.health = "orphaned"
            out.flagged.append(b)
            continue
        _follow(b, c, snap.host, out)
    return out


def _follow(b: StoredBinding, c: Container, host: HostFacts, out: Placement) -> None:
    if c.id != b.container_id:
        out.notes.append(f"{b.id}: container {c.name} was re-created ({(b.container_id or '')[:12]} -> {c.id[:12]})")
        b.container_id = c.id
    b.container_name = c.name
    ip = container_address(c, b.family) if c.state == "running" else None
    if ip is None:
        b.health = "waiting"
        out.flagged.append(b)
        return
    if ip != b.last_ip:
        out.moved.append((b, b.last_ip, ip))
    b.health, b.last_ip, b.bridge = "ok", ip, bridge_for(ip, host)
    out.placed.append(Placed(b, ip, b.bridge))
