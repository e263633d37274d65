"""`portscope list`'s read: the inventory and the diagnosis, so each row carries its findings."""

from __future__ import annotations

import argparse

from portscope.cli.sources import load_snapshot
from portscope.core.binding_findings import findings_by_binding
from portscope.core.diagnose.run import diagnose
from portscope.core.findings import Finding
from portscope.core.inventory import Inventory, build_inventory
from portscope.core.model import Snapshot


def load_listing(args: argparse.Namespace) -> tuple[Snapshot, Inventory, dict[str, list[Finding]]]:
    """The snapshot, its inventory and binding id -> the findings that name it (as the TUI's Ports view).

    The diagnosis needs every table (filter rules, not only nat) and the DNATs that catch nothing."""
    snap = load_snapshot(args)
    return snap, *listing_of(snap)


def listing_of(snap: Snapshot) -> tuple[Inventory, dict[str, list[Finding]]]:
    """A snapshot's inventory and binding id -> the findings that name it."""
    inv = build_inventory(snap)
    return inv, findings_by_binding(diagnose(snap, inv))
