"""Check a state document field by field before any of it is used: a wrong shape names the field."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from portscope.core.publish.model import State, StoredBinding
from portscope.core.publish.trusted import StateError
from portscope.core.publish.validate import PROTOCOLS, is_binding_id

SCHEMA = "portscope.state/1"
BACKENDS = ("iptables-nft", "iptables-legacy", "nftables")
KINDS = ("publish", "block")
HEALTHS = ("ok", "waiting", "orphaned")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # container names and ids, as Docker allows them
_IFACE_RE = re.compile(r"[A-Za-z0-9_.@:-]{1,15}")
_TEXT_MAX = 200


class _Bad(Exception):
    """One field is wrong: `field` names it, the message says how."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")


def parse_state(data: Any, path: str) -> State:
    """The State in a decoded state.json; StateError naming the first wrong field."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise StateError(f"{path} is not a portscope state file ({SCHEMA}): move it away")
    try:
        backend = _optional(data, "backend", "backend", _one_of(BACKENDS))
        raw = data.get("bindings", [])
        if not isinstance(raw, list):
            raise _Bad("bindings", "is not a list")
        bindings = [_binding(item, f"bindings[{i}]") for i, item in enumerate(raw)]
        ids = [b.id for b in bindings]
        if len(set(ids)) != len(ids):
            raise _Bad("bindings", "hold the same id twice")
    except _Bad as exc:
        raise StateError(f"{path}: {exc}: fix or move the file") from None
    try:
        extras = State.parse_extras(data)
    except ValueError as exc:
        raise StateError(f"{path}: {exc}: fix or move the file") from None
    return State(bindings=bindings, backend=backend, **extras)


def _binding(item: Any, where: str) -> StoredBinding:
    if not isinstance(item, dict):
        raise _Bad(where, "is not an object")
    kind = _required(item, where, "kind", _one_of(KINDS))
    low = 0 if kind == "block" else 1  # a block of a DNAT without a port match stores port 0
    values = {
        "id": _required(item, where, "id", _binding_id),
        "kind": kind,
        "host_ip": _required(item, where, "host_ip", _address),
        "host_port": _required(item, where, "host_port", _port(low)),
        "protocol": _required(item, where, "protocol", _one_of(PROTOCOLS)),
        "container_port": _required(item, where, "container_port", _port(low)),
        "container_id": _optional(item, where, "container_id", _name),
        "container_name": _optional(item, where, "container_name", _name),
        "target_ip": _optional(item, where, "target_ip", _address),
        "last_ip": _optional(item, where, "last_ip", _address),
        "bridge": _optional(item, where, "bridge", _iface),
        "who": _optional(item, where, "who", _text) or "",
        "when": _optional(item, where, "when", _text) or "",
        "why": _optional(item, where, "why", _text),
        "health": _optional(item, where, "health", _one_of(HEALTHS)) or "ok",
    }
    return StoredBinding(**values)


def _required(data: dict, where: str, key: str, check: Any) -> Any:
    if data.get(key) is None:
        raise _Bad(f"{where}.{key}", "is missing")
    return _optional(data, where, key, check)


def _optional(data: dict, where: str, key: str, check: Any) -> Any:
    value = data.get(key)
    if value is None:
        return None
    field = key if where == key else f"{where}.{key}"
    problem = check(value)
    if problem:
        raise _Bad(field, f"is {_shown(value)}: {problem}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _one_of(allowed: tuple[str, ...]) -> Any:
    return lambda v: None if _is_str(v) and v in allowed else "expected one of " + ", ".join(allowed)


def _binding_id(value: Any) -> str | None:
    return None if _is_str(value) and is_binding_id(value) else "expected ps- and 8 hex digits"


def _address(value: Any) -> str | None:
    if not _is_str(value) or not value.isascii():
        return "expected an IP address string"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "expected an IP address string"
    return None


def _port(low: int) -> Any:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= 65535
        return None if ok else f"expected a number {low}-65535"

    return check


def _name(value: Any) -> str | None:
    return None if _is_str(value) and _NAME_RE.fullmatch(value) else "expected a container name or id"


def _iface(value: Any) -> str | None:
    return None if _is_str(value) and _IFACE_RE.fullmatch(value) else "expected an interface name"


def _text(value: Any) -> str | None:
    ok = _is_str(value) and len(value) <= _TEXT_MAX and value.isprintable()
    return None if ok else f"expected one line of printable text (at most {_TEXT_MAX} characters)"
