"""apply, reconcile and status: bring the kernel back in line with the stored bindings, or say how it differs."""

from __future__ import annotations

from dataclasses import dataclass, field

from portscope.core.publish import audit, state
from portscope.core.publish.commit import Outcome
from portscope.core.publish.errors import RuleRefusedError
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.ops import localnet_sync
from portscope.core.publish.placement import Placement, place_all
from portscope.core.publish.world import read_world, require_root


@dataclass(slots=True)
class Report:
    bindings: list[StoredBinding]
    placement: Placement
    outcome: Outcome | None = None
    drift: list[str] = field(default_factory=list)
    backend: str | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.drift)


def converge(
    action: str = "apply",
    docker_host: str | None = None,
    dry_run: bool = False,
    backend: str = "auto",
    require_state: bool = False,
) -> Report:
    """Re-create every stored binding's rules on its target's current address (idempotent).

    `apply` after a reboot, a flush or a daemon restart; `reconcile` after containers moved. A binding
    whose container is stopped or gone gets no rules and is flagged (kept in the state, never deleted).
    `require_state` (watch, once it has seen a state): a missing state is a StateError, never "no bindings".
    """
    require_root(action)
    with state.locked(create=not require_state) as folder:
        current = state.load(folder, required=require_state)
        world = read_world(docker_host, backend, current)
        placement = place_all(current.bindings, world.snap)
        try:
            outcome = world.commit(placement.placed, dry_run=dry_run)
        except RuleRefusedError as exc:
            audit.record(folder, action, f"{len(current.bindings)} bindings", f"refused: {exc}")
            raise
        report = Report(current.bindings, placement, outcome, backend=world.backend.name)
        if dry_run:
            return report
        placement.notes += outcome.notes + [f"warning: {w}" for w in outcome.warnings]
        localnet_sync(placement.placed, current, placement.notes)
        current.backend = world.backend.name
        current.created = sorted(world.owned.created)
        state.save(folder, current)
        if outcome.batches:
            moved = ", ".join(f"{b.id} {old} -> {new}" for b, old, new in placement.moved)
            what = f"{len(current.bindings)} bindings" + (f"; moved {moved}" if moved else "")
            audit.record(folder, action, what, "ok", outcome.added, outcome.removed)
        return report


def status(docker_host: str | None = None, backend: str = "auto") -> Report:
    """Stored bindings against the kernel: `drift` lists every difference (nothing is changed)."""
    require_root("status")
    with state.locked() as folder:
        current = state.load(folder)
        world = read_world(docker_host, backend, current)
        last_ips = {b.id: b.last_ip for b in current.bindings}
        placement = place_all(current.bindings, world.snap)
        drift = world.drift(placement.placed)
    report = Report(current.bindings, placement, backend=world.backend.name)
    report.drift += drift
    for b, _, new in placement.moved:
        report.drift.append(
            f"{b.id}: {b.container_name} moved {last_ips.get(b.id)} -> {new}: run `portscope reconcile`"
        )
    report.drift += [f"{b.id}: container {b.container_name} is gone (binding kept)" for b in placement.flagged
                     if b.health == "orphaned"]  # fmt: skip
    return report
