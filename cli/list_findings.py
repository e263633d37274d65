"""`portscope list`'s read: the inventory and the diagnosis, so each row carries its findings."""

from __future__ import annotations

from portscope.core.binding_findings import findings_by_binding
from portscope.core.diagnose.run import diagnose
from portscope.core.findings import Finding
from portscope.core.inventory import Inventory, build_inventory
from portscope.core.model import Snapshot


def listing_of(snap: Snapshot) -> tuple[Inventory, dict[str, list[Finding]]]:
    """A snapshot's inventory and binding id -> the findings that name it."""
    inv = build_inventory(snap)
    return inv, findings_by_binding(diagnose(snap, inv))
