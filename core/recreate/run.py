"""`portscope recreate`: read, plan, check, then swap under portscope's lock (or only describe, `--dry-run`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from portscope.core.publish.errors import ConflictError
from portscope.core.publish.model import StoredBinding
from portscope.core.recreate import journal, swap
from portscope.core.recreate.describe import describe, ready_timeout
from portscope.core.recreate.engine import Engine, connect
from portscope.core.recreate.errors import RecreateRefused
from portscope.core.recreate.plan import PortChange, RecreatePlan, plan_recreate


@dataclass(frozen=True, slots=True)
class RecreateRequest:
    """What the user asked for, parsed."""

    container: str
    change: PortChange
    adopt: str | None = None  # a portscope binding id that the new Docker port replaces
    dry_run: bool = False
    force: bool = False
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class RecreateOutcome:
    plan: RecreatePlan
    lines: tuple[str, ...]
    new_id: str | None = None
    warnings: tuple[str, ...] = field(default=())


def prepare(engine: Engine, request: RecreateRequest) -> RecreatePlan:
    """The plan for the container as it is now (pure after the two engine reads)."""
    inspect = engine.inspect(request.container)
    name = str(inspect["Config"].get("Image") or "")
    image_name_current = bool(name) and engine.image_id(name) == inspect["Image"]
    plan = plan_recreate(inspect, request.change, image_name_current=image_name_current)
    if engine.exists(plan.aside_name):
        raise RecreateRefused(f"{plan.aside_name} exists: remove it (an earlier recreate's leftover?) and try again")
    if engine.image_id(str(inspect["Image"])) is None:
        raise RecreateRefused(f"the image of {plan.name} ({inspect['Image'][:19]}) is gone: pull or load it first")
    return plan


def recreate(request: RecreateRequest, docker_host: str | None = None, state_dir: str | None = None) -> RecreateOutcome:
    """Plan, check the new host ports, and (unless a dry run) swap. Raises a PortscopeError on any refusal."""
    from portscope.core.publish import state

    if request.dry_run:
        with connect(docker_host) as engine:
            stored = _others(state.load(state_dir or state.state_dir()).bindings, request.adopt)
            return _checked_plan(engine, request, stored, docker_host)
    with connect(docker_host) as engine, state.locked(state_dir) as folder:
        pending = journal.read(folder)
        if pending is not None:
            raise RecreateRefused(
                f"a recreate of {pending.name} was interrupted: run `portscope recreate --resume` first"
            )
        checked = _checked_plan(engine, request, _others(state.load(folder).bindings, request.adopt), docker_host)
        new_id = swap.swap(engine, checked.plan, folder, timeout=ready_timeout(checked.plan, request.timeout))
    return replace(checked, new_id=new_id)


def _checked_plan(
    engine: Engine, request: RecreateRequest, stored: Sequence[StoredBinding], docker_host: str | None
) -> RecreateOutcome:
    """The plan, with the added host ports checked against a live read of the host."""
    from portscope.core.live import read_live
    from portscope.core.recreate.precheck import check_added_ports

    plan = prepare(engine, request)
    verdict = check_added_ports(read_live(docker_host), plan.old_id, request.change.add, stored)
    if verdict.errors and not request.force:
        raise ConflictError(f"{verdict.errors[0]}; choose another host port (or --force)")
    warnings = tuple([*verdict.errors, *verdict.warnings] if request.force else verdict.warnings)
    lines = tuple(describe(plan, ready_timeout(plan, request.timeout)))
    return RecreateOutcome(plan=plan, lines=lines, warnings=warnings)


def resume(docker_host: str | None = None, state_dir: str | None = None) -> str:
    """Finish or undo an interrupted swap."""
    from portscope.core.publish import state

    with connect(docker_host) as engine, state.locked(state_dir) as folder:
        return swap.resume(engine, folder)


def _others(stored: Sequence[StoredBinding], adopted: str | None) -> list[StoredBinding]:
    return [b for b in stored if b.id != adopted]


def adoption(binding_id: str, state_dir: str | None = None, *, dry_run: bool = False) -> RecreateRequest:
    """The recreate that turns portscope's binding `binding_id` into a Docker port of the same container."""
    from portscope.core.publish import state
    from portscope.core.publish.errors import InputError
    from portscope.core.publish.spec import PortSpec
    from portscope.core.publish.validate import check_binding_id

    wanted = check_binding_id(binding_id)
    found = [b for b in state.load(state_dir or state.state_dir()).bindings if b.id == wanted]
    if not found or found[0].kind != "publish":
        raise InputError(f"{wanted} is not one of portscope's published bindings: see `portscope status`")
    binding = found[0]
    if binding.container_id is None:
        raise InputError(f"{wanted} forwards to the address {binding.target_ip}, not a container: nothing to recreate")
    spec = PortSpec(
        container_port=binding.container_port,
        protocol=binding.protocol,
        host_ip=binding.host_ip,
        host_port=binding.host_port,
    )
    return RecreateRequest(
        container=binding.container_id, change=PortChange(add=(spec,)), adopt=wanted, dry_run=dry_run
    )


def drop_adopted(binding_id: str, docker_host: str | None = None) -> str | None:
    """Remove portscope's binding once Docker publishes the port; a one-line note when that fails."""
    from portscope.core.errors import PortscopeError
    from portscope.core.publish import ops

    try:
        ops.run(ops.parse_change("unpublish", binding_id), docker_host=docker_host)
    except PortscopeError as exc:
        return (
            f"the container now publishes the port, but removing {binding_id} failed ({exc}):"
            f" run `portscope unpublish {binding_id}`"
        )
    return None
