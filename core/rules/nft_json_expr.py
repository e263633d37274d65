"""nft JSON expressions and statements rendered the way `nft list` prints them, cut into terms.

The rendering is also `Rule.text`; the terms feed `nft_statements.build_rules`, exactly as the text
reader's do.
"""

from __future__ import annotations

import json
from typing import Any

from portscope.core.rules.nft_statements import (
    NAT_KINDS,
    VERDICT_NAMES,
    Match,
    NatStmt,
    Note,
    Term,
    Value,
    VerdictStmt,
    VmapStmt,
)

_UNQUALIFIED_META = frozenset({"iifname", "oifname", "iif", "oif", "iifgroup", "oifgroup"})
_IFNAME_KEYS = frozenset({"iifname", "oifname", "iif", "oif"})
_MARK_KEYS = frozenset({"meta mark", "ct mark"})
_BINOPS = frozenset({"&", "|", "^", "<<", ">>"})
_SILENT_OPS = frozenset({"==", "in"})  # nft prints no operator for these (unless the left side is a binop)

# --- expressions -------------------------------------------------------------------------------


def render(expr: Any, hint: str = "") -> str:
    """One JSON expression as nft prints it. `hint` is "ifname" or "mark" for values of those types."""
    if isinstance(expr, str):
        return f'"{expr}"' if hint == "ifname" and not expr.startswith("@") else expr
    if isinstance(expr, bool) or expr is None:
        return json.dumps(expr)
    if isinstance(expr, int):
        return f"0x{expr:08x}" if hint == "mark" and expr >= 0 else str(expr)
    if isinstance(expr, list):
        return ",".join(render(e, hint) for e in expr)
    if isinstance(expr, dict):
        return _render_object(expr, hint)
    return json.dumps(expr)


def _render_object(expr: dict[str, Any], hint: str) -> str:
    if len(expr) != 1:
        return _generic(expr)
    ((kind, body),) = expr.items()
    renderer = _RENDERERS.get(kind)
    if renderer is not None:
        text = renderer(body, hint)
        if text is not None:
            return text
    if kind in _BINOPS and isinstance(body, list) and len(body) == 2:
        left = render(body[0], hint)
        return f"{left} {kind} {render(body[1], hint or _hint(left))}"
    if kind in VERDICT_NAMES:
        return _verdict_text(kind, body)
    return _generic(expr)


def _generic(expr: Any) -> str:
    """A readable form for objects this module does not know: `name key value ...`."""
    if not isinstance(expr, dict):
        return render(expr)
    parts = []
    for key, value in expr.items():
        parts.append(str(key))
        if isinstance(value, dict):
            parts.extend(f"{k} {render(v)}" for k, v in value.items())
        elif value is not None:
            parts.append(render(value))
    return " ".join(parts)


def _payload(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict):
        return None
    if "protocol" in body and "field" in body:
        return f"{body['protocol']} {body['field']}"
    if {"base", "offset", "len"} <= body.keys():
        return f"@{body['base']},{body['offset']},{body['len']}"
    return None


def _meta(body: Any, hint: str) -> str | None:
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str):
        return None
    return key if key in _UNQUALIFIED_META else f"meta {key}"


def _ct(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        return None
    words = ["ct", body.get("dir"), body.get("family"), body["key"]]
    return " ".join(str(w) for w in words if w)


def _fib(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("result"), str):
        return None
    flags = body.get("flags", [])
    flags = [flags] if isinstance(flags, str) else flags if isinstance(flags, list) else []
    words = ["fib", " . ".join(str(f) for f in flags), body["result"]]
    return " ".join(w for w in words if w)


def _prefix(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or "addr" not in body or "len" not in body:
        return None
    return f"{render(body['addr'])}/{render(body['len'])}"


def _range(body: Any, hint: str) -> str | None:
    if not isinstance(body, list) or len(body) != 2:
        return None
    return f"{render(body[0], hint)}-{render(body[1], hint)}"


def _set(body: Any, hint: str) -> str | None:
    if not isinstance(body, list):
        return None
    return "{ " + ", ".join(_set_element(e, hint) for e in body) + " }"


def _set_element(element: Any, hint: str) -> str:
    if isinstance(element, list) and len(element) == 2:  # a map element [key, data]
        return f"{render(element[0], hint)} : {render(element[1])}"
    return render(element, hint)


def _concat(body: Any, hint: str) -> str | None:
    return " . ".join(render(e) for e in body) if isinstance(body, list) else None


def _elem(body: Any, hint: str) -> str | None:
    return render(body["val"], hint) if isinstance(body, dict) and "val" in body else None


def _map(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or "key" not in body or "data" not in body:
        return None
    key = render(body["key"])
    return f"{key} map {render(body['data'], _hint(key))}"


def _numgen(body: Any, hint: str) -> str | None:
    """`numgen inc mod 2 [offset 1]`, as nft prints it."""
    if not isinstance(body, dict) or "mode" not in body or "mod" not in body:
        return None
    offset = body.get("offset")
    return f"numgen {body['mode']} mod {body['mod']}" + (f" offset {offset}" if offset else "")


_RENDERERS = {
    "numgen": _numgen,
    "payload": _payload,
    "meta": _meta,
    "ct": _ct,
    "fib": _fib,
    "prefix": _prefix,
    "range": _range,
    "set": _set,
    "concat": _concat,
    "elem": _elem,
    "map": _map,
}


def _hint(key: str) -> str:
    """The value hint for a printed key: quoted names for interfaces, hex for marks."""
    if key in _IFNAME_KEYS:
        return "ifname"
    if key in _MARK_KEYS or key.startswith(("meta mark ", "ct mark ")):
        return "mark"
    return ""


def _value(expr: Any, hint: str) -> Value:
    """The right-hand side of a match: an anonymous set's elements, or one value's text."""
    if isinstance(expr, dict) and len(expr) == 1 and isinstance(expr.get("set"), list):
        return tuple(_set_element(e, hint) for e in expr["set"])
    return render(expr, hint)


def _value_text(value: Value) -> str:
    return "{ " + ", ".join(value) + " }" if isinstance(value, tuple) else value


# --- statements --------------------------------------------------------------------------------


def statement_term(stmt: Any) -> Term:
    """One element of a rule's "expr" list as a term; unknown statements become conditions."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        return Note("cond", _generic(stmt))
    ((kind, body),) = stmt.items()
    if kind == "match":
        return _match(body) or Note("cond", _generic(stmt))
    if kind in VERDICT_NAMES:
        target = body.get("target") if isinstance(body, dict) and kind in ("jump", "goto") else None
        return VerdictStmt(kind, target if isinstance(target, str) else None, _verdict_text(kind, body))
    if kind in NAT_KINDS:
        return _nat(kind, body)
    builder = _STATEMENTS.get(kind)
    term = builder(body) if builder is not None else None
    return term or Note("cond", _generic(stmt))


def _match(body: Any) -> Match | None:
    if not isinstance(body, dict) or "left" not in body or "right" not in body:
        return None
    op = body.get("op", "==")
    op = op if isinstance(op, str) else "=="
    flags = _flags_mask(body["left"], body["right"], op)
    if flags is not None:
        return flags
    key = render(body["left"])
    value = _value(body["right"], _hint(key))
    binop_left = isinstance(body["left"], dict) and any(k in _BINOPS for k in body["left"])
    shown_op = "" if op in _SILENT_OPS and not binop_left else op
    text = " ".join(part for part in (key, shown_op, _value_text(value)) if part)
    return Match(key=key, op=shown_op, value=value, text=text)


def _flags_mask(left: Any, right: Any, op: str) -> Match | None:
    """`tcp flags & (syn | ack) == syn` is printed `tcp flags syn / syn,ack`."""
    if op not in _SILENT_OPS or not isinstance(left, dict) or not isinstance(left.get("&"), list):
        return None
    operands = left["&"]
    if len(operands) != 2 or render(operands[0]) != "tcp flags" or isinstance(right, dict):
        return None
    value = f"{render(right)} / {render(operands[1])}"
    return Match(key="tcp flags", op="", value=value, text=f"tcp flags {value}")


def _verdict_text(kind: str, body: Any) -> str:
    if kind in ("jump", "goto"):
        target = body.get("target") if isinstance(body, dict) else None
        return f"{kind} {target}" if isinstance(target, str) else kind
    if kind == "reject" and isinstance(body, dict):
        reject_type, code = body.get("type"), body.get("expr")
        if reject_type == "tcp reset":
            return "reject with tcp reset"
        if isinstance(reject_type, str) and code is not None:
            return f"reject with {reject_type} {render(code)}"
    if kind == "queue" and isinstance(body, dict):
        return _generic({"queue": body})
    return kind


def _nat(kind: str, body: Any) -> NatStmt:
    """`dnat ip to 10.0.0.2:80` from {"dnat": {"family": "ip", "addr": ..., "port": ..., "flags": ...}}."""
    body = body if isinstance(body, dict) else {}
    family = body.get("family") if body.get("family") in ("ip", "ip6") else None
    addr, port = body.get("addr"), body.get("port")
    computed = (isinstance(addr, dict) and not _is_literal(addr)) or (isinstance(port, dict) and not _is_literal(port))
    addr_text = render(addr) if addr is not None else ""
    port_text = render(port) if port is not None else ""
    if ":" in addr_text and port_text and not computed:
        target = f"[{addr_text}]:{port_text}"
    else:
        target = addr_text + (f":{port_text}" if port_text else "")
    flags = body.get("flags")
    flags_text = ",".join(map(str, flags)) if isinstance(flags, list) else flags if isinstance(flags, str) else ""
    words = [kind, family or "", f"to {target}" if target else "", flags_text]
    text = " ".join(w for w in words if w)
    return NatStmt(kind=kind, family=family, target=None if computed else target, text=text)


def _is_literal(expr: dict[str, Any]) -> bool:
    """A range or prefix is a literal NAT target; a map lookup or other expression is not."""
    return len(expr) == 1 and ("range" in expr or "prefix" in expr)


def _counter(body: Any) -> Term:
    return Note("counter", f'counter name "{body}"' if isinstance(body, str) else "counter")


def _log(body: Any) -> Term:
    words = ["log"]
    for key, value in body.items() if isinstance(body, dict) else ():
        words.append(f'{key} "{value}"' if key == "prefix" else f"{key} {render(value)}")
    return Note("log", " ".join(words))


def _limit(body: Any) -> Term | None:
    if not isinstance(body, dict) or "rate" not in body:
        return None
    over = "over " if body.get("inv") else ""
    unit = body.get("rate_unit", "packets")
    per = body.get("per", "second")
    rate = f"{body['rate']}/{per}" if unit == "packets" else f"{body['rate']} {unit}/{per}"
    text = f"limit rate {over}{rate}"
    burst = body.get("burst")
    if unit == "packets" and burst not in (None, 0, 5):
        text += f" burst {burst} packets"
    elif unit != "packets" and burst:
        text += f" burst {burst} {body.get('burst_unit', 'bytes')}"
    return Note("cond", text)


def _mangle(body: Any) -> Term | None:
    if not isinstance(body, dict) or "key" not in body or "value" not in body:
        return None
    key = render(body["key"])
    text = f"{key} set {render(body['value'], _hint(key))}"
    return Note("mark" if key == "meta mark" else "effect", text)


def _vmap(body: Any) -> Term | None:
    if not isinstance(body, dict) or "key" not in body or "data" not in body:
        return None
    key = render(body["key"])
    value = _value(body["data"], _hint(key))
    return VmapStmt(key, value, f"{key} vmap {_value_text(value)}")


def _xt(body: Any) -> Term:
    xt_type = body.get("type") if isinstance(body, dict) else None
    name = body.get("name") if isinstance(body, dict) else None
    return Note("effect" if xt_type == "target" else "cond", f"xt {xt_type} {name}")


_STATEMENTS = {
    "counter": _counter,
    "log": _log,
    "limit": _limit,
    "mangle": _mangle,
    "vmap": _vmap,
    "xt": _xt,
    "notrack": lambda body: Note("effect", "notrack"),
}
