"""The swap: stop the old container, rename it aside, create and start the new one, then remove the old one.

Each step is recorded first (`journal`), so an interrupted swap can be finished or undone with
`resume`. Any failure undoes what was done: the new container is removed, the old one gets its
name back and is started again if it was running.
"""

from __future__ import annotations

from portscope.core.recreate import journal
from portscope.core.recreate.engine import Engine
from portscope.core.recreate.errors import RecreateFailed
from portscope.core.recreate.journal import SwapRecord
from portscope.core.recreate.plan import RecreatePlan


def swap(engine: Engine, plan: RecreatePlan, folder: str, *, timeout: float) -> str:
    """Replace the container; returns the new container's ID. RecreateFailed (after undoing) on failure."""
    record = SwapRecord(
        name=plan.name,
        aside=plan.aside_name,
        old_id=plan.old_id,
        was_running=plan.was_running,
        health=plan.health_check,
        timeout=timeout,
    )
    journal.write(folder, record)
    try:
        if plan.was_running:
            engine.stop(plan.old_id)
            journal.write(folder, record := record.at("stopped"))
        engine.rename(plan.old_id, plan.aside_name)
        journal.write(folder, record := record.at("renamed"))
        new_id = engine.create(plan.name, plan.create_body)
        journal.write(folder, record := record.at("created", new_id))
        for network, endpoint in plan.connect:
            engine.connect(network, new_id, endpoint)
        if plan.was_running:
            engine.start(new_id)
            engine.wait_ready(new_id, health=plan.health_check, timeout=timeout)
        journal.write(folder, record := record.at("started"))
    except (RecreateFailed, KeyboardInterrupt) as exc:
        undo(engine, record)
        journal.clear(folder)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RecreateFailed(f"{exc}; {plan.name} is back as it was") from None
    engine.remove(plan.old_id)
    journal.clear(folder)
    return new_id


def undo(engine: Engine, record: SwapRecord) -> None:
    """Put the original back: remove the replacement, give the original its name, start it if it ran."""
    new_id = record.new_id or _replacement(engine, record)
    if new_id is not None:
        engine.remove(new_id, force=True)
    if engine.inspect(record.old_id)["Name"].lstrip("/") != record.name:
        engine.rename(record.old_id, record.name)
    if record.was_running and not engine.inspect(record.old_id)["State"].get("Running"):
        engine.start(record.old_id)


def resume(engine: Engine, folder: str) -> str:
    """Finish or undo the swap `journal` records; a one-line account of what was done."""
    record = journal.read(folder)
    if record is None:
        return "no interrupted recreate to resume"
    if not engine.exists(record.old_id):
        journal.clear(folder)
        return f"{record.name}: the swap had finished (the original is gone)"
    if record.step == "started" and record.new_id and _ready(engine, record):
        engine.remove(record.old_id)
        journal.clear(folder)
        return f"{record.name}: finished the swap (the replacement runs; removed the original)"
    undo(engine, record)
    journal.clear(folder)
    return f"{record.name}: undid the interrupted swap (the original is back)"


def _replacement(engine: Engine, record: SwapRecord) -> str | None:
    """A container created under the name while the original was aside (the record may predate its ID)."""
    if not engine.exists(record.name):
        return None
    found = engine.inspect(record.name)["Id"]
    return None if found == record.old_id else str(found)


def _ready(engine: Engine, record: SwapRecord) -> bool:
    if not record.was_running:
        return True
    try:
        engine.wait_ready(str(record.new_id), health=record.health, timeout=record.timeout)
    except RecreateFailed:
        return False
    return True
