"""The stable JSON schema of `portscope list --json` (documented in docs/json.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from portscope.core.findings import Finding
from portscope.core.inventory import Inventory
from portscope.core.model import Binding, Rule, Snapshot, Socket

if TYPE_CHECKING:
    from typing import Any

LIST_SCHEMA = "portscope.list/1"


def rule_json(r: Rule) -> dict[str, Any]:
    return {
        "backend": r.backend,
        "family": r.family,
        "table": r.table,
        "chain": r.chain,
        "position": r.position,
        "text": r.text,
    }


def process_json(s: Socket) -> dict[str, Any]:
    return {
        "pid": s.pid,
        "name": s.process,
        "user": s.user,
        "cmdline": list(s.cmdline),
        "address": s.address,
        "port": s.port,
    }


def _rules_json(rules: list[Rule], memo: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rule evidence; the entry jumps shared by every binding are rendered once."""
    out = []
    for r in rules:
        found = memo.get(id(r))
        if found is None:
            found = memo[id(r)] = rule_json(r)
        out.append(found)
    return out


def binding_json(
    b: Binding, memo: dict[int, dict[str, Any]] | None = None, kinds: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """`kinds`: binding id -> the kinds of the findings that name it (`findings`; null without a diagnosis).

    The document shares the binding's lists (it is written out, never changed)."""
    return {
        "id": b.id,
        "family": b.family,
        "protocol": b.protocol,
        "host_ip": b.host_ip,
        "host_port": b.host_port,
        "host_port_last": b.host_port_last,
        "target_ip": b.target_ip,
        "target_port": b.target_port,
        "target_port_last": b.target_port_last,
        "owner": b.owner,
        "carriers": b.carriers,
        "hooks": b.hooks,
        "reported_by_engine": b.reported_by_engine,
        "container": {"id": b.container_id, "name": b.container_name} if b.container_id else None,
        "container_port": b.container_port,
        "reach": None if b.reach is None else b.reach.to_json(rule_json),
        "findings": None if kinds is None else list(kinds.get(b.id, ())),
        "evidence": {
            "rules": _rules_json(b.rules, {} if memo is None else memo),
            "processes": list(map(process_json, b.sockets)),
        },
    }


def list_json(
    snap: Snapshot, inv: Inventory, bindings: list[Binding], kinds: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    memo: dict[int, dict[str, Any]] = {}
    return {
        "schema": LIST_SCHEMA,
        "taken_at": snap.taken_at,
        "host": {"hostname": snap.host.hostname, "kernel": snap.host.kernel, "is_root": snap.host.is_root},
        "backends": [asdict(b) for b in snap.backends],
        "engine": asdict(snap.engine),
        "bindings": [binding_json(b, memo, kinds) for b in bindings],
        "not_bindings": [{"kind": u.kind, "reason": u.reason, "rule": rule_json(u.rule)} for u in inv.unreachable],
        "warnings": list(snap.warnings),
    }


CONFLICTS_SCHEMA = "portscope.conflicts/1"


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "severity": f.severity,
        "title": f.title,
        "explanation": f.explanation,
        "fix": f.fix,
        "container": f.container,
        "port": f.port,
        "protocol": f.protocol,
        "bindings": list(f.bindings),
        "evidence": {"rules": [rule_json(r) for r in f.rules], "processes": [process_json(s) for s in f.processes]},
    }


def conflicts_json(snap: Snapshot, findings: list[Finding]) -> dict[str, Any]:
    counts = {sev: sum(1 for f in findings if f.severity == sev) for sev in ("error", "warning", "info")}
    return {
        "schema": CONFLICTS_SCHEMA,
        "taken_at": snap.taken_at,
        "counts": counts,
        "findings": [finding_json(f) for f in findings],
        "warnings": list(snap.warnings),
    }
