"""apply, reconcile and status: bring the kernel back in line with the stored bindings, or say how it differs."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.publish import audit, state
from core.publish.commit import FAMILIES, Outcome, commit, read_views
from core.publish.errors import RuleRefusedError
from core.publish.model import StoredBinding
from core.publish.ops import localnet_on
from core.publish.placement import Placement, place_all
from core.publish.saved import differences
from core.publish.world import read_world, require_root


@dataclass(slots=True)
class Report:
    bindings: list[StoredBinding]
    placement: Placement
    outcome: Outcome | None = None
    drift: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.drift)


def converge(action: str = "apply", docker_host: str | None = None, dry_run: bool = False) -> Report:
    """Re-create every stored binding's rules on its target's current address (idempotent).

    `apply` after a reboot, a flush or a daemon restart; `reconcile` after containers moved. A binding
    whose container is stopped or gone gets no rules and is flagged (kept in the state, never deleted).
    """
    require_root(action)
    with state.locked() as folder:
        current = state.load(folder)
        world = read_world(docker_host)
        placement = place_all(current.bindings, world.snap)
        try:
            outcome = commit(world.backend, world.wanted(placement.placed), dry_run=dry_run)
        except RuleRefusedError as exc:
            audit.record(folder, action, f"{len(current.bindings)} bindings", f"refused: {exc}")
            raise
        report = Report(current.bindings, placement, outcome)
        if dry_run:
            return report
        localnet_on(placement.placed, placement.notes)
        state.save(folder, current)
        if outcome.batches:
            moved = ", ".join(f"{b.id} {old} -> {new}" for b, old, new in placement.moved)
            what = f"{len(current.bindings)} bindings" + (f"; moved {moved}" if moved else "")
            audit.record(folder, action, what, "ok", outcome.added, outcome.removed)
        return report


def status(docker_host: str | None = None) -> Report:
    """Stored bindings against the kernel: `drift` lists every difference (nothing is changed)."""
    require_root("status")
    with state.locked() as folder:
        current = state.load(folder)
        world = read_world(docker_host)
        last_ips = {b.id: b.last_ip for b in current.bindings}
        placement = place_all(current.bindings, world.snap)
        wanted = world.wanted(placement.placed)
        actual = {f: view for f, (view, _) in read_views(world.backend).items()}
    report = Report(current.bindings, placement)
    for family in FAMILIES:
        report.drift += differences(wanted.get(family, {}), actual.get(family, {}))
    for b, _, new in placement.moved:
        report.drift.append(
            f"{b.id}: {b.container_name} moved {last_ips.get(b.id)} -> {new}: run `portscope reconcile`"
        )
    report.drift += [f"{b.id}: container {b.container_name} is gone (binding kept)" for b in placement.flagged
                     if b.health == "orphaned"]  # fmt: skip
    return report
