"""`portscope list --json` for a pipe: compact text built from pre-encoded parts, as json.dumps would write it.

With 10,000 bindings the document is ~9 MB, most of it rule evidence repeated from binding to
binding (the entry jumps appear in every one). Building dicts and letting json.dumps encode them
took 0.22 s there; here each rule is encoded once and each binding is one string format, byte-for-
byte the output of `json.dumps(list_json(...), separators=(",", ":"))` (a test holds them equal).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string
from typing import TYPE_CHECKING

from portscope.cli.render_json import LIST_SCHEMA, process_json, rule_json
from portscope.core.inventory import Inventory
from portscope.core.model import Binding, Rule, Snapshot
from portscope.core.record import asdict

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TextIO

_BINDING = (
    '{"id":%s,"family":%s,"protocol":%s,"host_ip":%s,"host_port":%s,"host_port_last":%s,"target_ip":%s,'
    '"target_port":%s,"target_port_last":%s,"owner":%s,"carriers":%s,"hooks":%s,"reported_by_engine":%s,'
    '"container":%s,"container_port":%s,"reach":%s,"findings":%s,"evidence":{"rules":[%s],"processes":%s}}'
)


_RULE_HEAD = '{"backend":%s,"family":%s,"table":%s,"chain":%s,"position":'
#: The encoded head of a rule, per (backend, family, table, chain): every rule of a chain shares it.
_rule_heads: dict[tuple, str] = {}


def _rule(r: Rule) -> str:
    where = (r.backend, r.family, r.table, r.chain)
    head = _rule_heads.get(where)
    if head is None:
        head = _rule_heads[where] = _RULE_HEAD % (
            _string(r.backend),
            _scalar(r.family),
            _string(r.table),
            _string(r.chain),
        )
    position = r.position
    return f'{head}{position if type(position) is int else _scalar(position)},"text":{_string(r.text)}}}'


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _scalar(value: str | int | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return _string(value)
    return str(value) if type(value) is int else _dumps(value)


#: Bindings encoded per chunk of `list_json_chunks`: the output is written as it is made, not held whole.
CHUNK = 500


def list_json_text(
    snap: Snapshot, inv: Inventory, bindings: list[Binding], kinds: dict[str, list[str]] | None = None
) -> str:
    """The compact JSON text of `render_json.list_json(snap, inv, bindings, kinds)`."""
    return "".join(list_json_chunks(snap, inv, bindings, kinds))


def write_list_json(
    out: TextIO, snap: Snapshot, inv: Inventory, bindings: list[Binding], kinds: dict[str, list[str]] | None = None
) -> None:
    """Write `list_json_text(...)` and a newline to `out` chunk by chunk (a 10,000-port list is ~9 MB)."""
    for chunk in list_json_chunks(snap, inv, bindings, kinds):
        out.write(chunk)
    out.write("\n")


def list_json_chunks(
    snap: Snapshot, inv: Inventory, bindings: list[Binding], kinds: dict[str, list[str]] | None = None
) -> Iterator[str]:
    """`list_json_text(...)` in pieces: the head, the bindings `CHUNK` at a time, the tail."""
    head = {
        "schema": LIST_SCHEMA,
        "taken_at": snap.taken_at,
        "host": {"hostname": snap.host.hostname, "kernel": snap.host.kernel, "is_root": snap.host.is_root},
        "backends": [asdict(b) for b in snap.backends],
        "engine": asdict(snap.engine),
    }
    yield _dumps(head)[:-1] + ',"bindings":['
    rules: dict[int, str] = {}
    lists: dict[tuple[str, ...], str] = {}
    for start in range(0, len(bindings), CHUNK):
        parts = [_binding(b, rules, lists, kinds) for b in bindings[start : start + CHUNK]]
        yield ("," if start else "") + ",".join(parts)
    tail = {
        "not_bindings": [{"kind": u.kind, "reason": u.reason, "rule": rule_json(u.rule)} for u in inv.unreachable],
        "warnings": list(snap.warnings),
    }
    yield "]," + _dumps(tail)[1:]


def _binding(
    b: Binding, rules: dict[int, str], lists: dict[tuple[str, ...], str], kinds: dict[str, list[str]] | None = None
) -> str:
    """One binding's JSON object; `rules` and `lists` memoise the evidence and the short lists.

    Ports are ints (or None): `str()` takes the common case inline, `_scalar` the rest.
    """
    evidence = []
    for r in b.rules:
        text = rules.get(id(r))
        if text is None:
            text = rules[id(r)] = _rule(r)
        evidence.append(text)
    carriers, hooks = tuple(b.carriers), tuple(b.hooks)
    carriers_text = lists.get(carriers) or lists.setdefault(carriers, _dumps(list(carriers)))
    hooks_text = lists.get(hooks) or lists.setdefault(hooks, _dumps(list(hooks)))
    container = _dumps({"id": b.container_id, "name": b.container_name}) if b.container_id else "null"
    processes = _dumps([process_json(s) for s in b.sockets]) if b.sockets else "[]"
    found = None if kinds is None else kinds.get(b.id, [])
    hp, hpl, tp, tpl, cp = b.host_port, b.host_port_last, b.target_port, b.target_port_last, b.container_port
    return _BINDING % (
        _string(b.id),
        _string(b.family),
        _string(b.protocol),
        _string(b.host_ip),
        str(hp) if type(hp) is int else _scalar(hp),
        "null" if hpl is None else _scalar(hpl),
        _string(b.target_ip),
        str(tp) if type(tp) is int else _scalar(tp),
        "null" if tpl is None else _scalar(tpl),
        _string(b.owner),
        carriers_text,
        hooks_text,
        "true" if b.reported_by_engine else "false",
        container,
        "null" if cp is None else _scalar(cp),
        "null" if b.reach is None else _dumps(b.reach.to_json(rule_json)),
        "null" if found is None else _dumps(found),
        ",".join(evidence),
        processes,
    )
