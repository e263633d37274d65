"""Run every check over a snapshot and its inventory; findings come out sorted by severity."""

from __future__ import annotations

from portscope.core.diagnose import engine_checks, host_checks, listener_checks, rule_checks
from portscope.core.findings import Finding
from portscope.core.inventory import Inventory
from portscope.core.model import Snapshot


def diagnose(snap: Snapshot, inv: Inventory) -> list[Finding]:
    """All findings. Each check is linear (or n·log n) in rules, sockets and bindings."""
    b = inv.bindings
    findings = [
        *rule_checks.shadowed_rules(inv.shadows),
        *listener_checks.shadowed_listeners(b, snap.sockets),
        *engine_checks.stale_rules(b, snap),
        *listener_checks.orphaned_proxies(b, snap.containers, snap.engine.reachable),
        *engine_checks.missing_rules(b, snap),
        *host_checks.exposed(b, snap.tables),
        *host_checks.ephemeral_overlaps(b, snap.containers, snap.host),
        *host_checks.route_localnet(snap.host, snap.sockets),
        *engine_checks.ports_already_allocated(snap.containers, b, snap.sockets),
        *engine_checks.family_mismatches(b, snap.host),
        *host_checks.loopback_reachable(b, snap.tables),
        *rule_checks.two_backends(snap.tables),
        *rule_checks.dead_jumps(snap.tables),
    ]
    findings.sort(key=lambda f: f.sort_key)
    return findings
