"""Check a capture document field by field and build its records: a wrong type or value names the field.

`snapshot_from_dict` (core.snapshot) reads only what passed here, so a number where an address
should be, a port written as a string or a bad CIDR ends as one `SnapshotError` line (exit 2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from portscope.core.model import (
    BackendStatus,
    Connection,
    Container,
    ContainerNetwork,
    EngineInfo,
    HostFacts,
    PortMapping,
    PortRange,
    ProxyArgs,
    RuleSource,
    Socket,
)

Check = Callable[[Any, str], Any]
_REQUIRED = object()
BACKENDS = ("iptables-legacy", "iptables-nft", "nftables", "dump")
FAMILIES = ("ipv4", "ipv6")
TABLE_FAMILIES = ("ipv4", "ipv6", "inet")
FORMATS = ("iptables-save", "iptables-S", "nft-text", "nft-json")


class FieldError(ValueError):
    """One field of the document is wrong; the message names it (`containers[2].networks[0].ipv4`)."""


def _bad(value: Any, at: str, expected: str) -> FieldError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return FieldError(f"{at} is {shown}: expected {expected}")


def text(value: Any, at: str) -> str:
    if not isinstance(value, str):
        raise _bad(value, at, "a string")
    return value


def boolean(value: Any, at: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(value, at, "true or false")
    return value


def integer(low: int, high: int) -> Check:
    def check(value: Any, at: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _bad(value, at, f"a number {low}-{high}")
        return value

    return check


port = integer(0, 65535)
count = integer(0, 2**63 - 1)


def one_of(*allowed: str) -> Check:
    def check(value: Any, at: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _bad(value, at, "one of " + ", ".join(allowed))
        return value

    return check


def address(value: Any, at: str) -> str:
    """An IP address string in ASCII (a zone, `%eth0`, is allowed: listeners on link-local addresses)."""
    if not isinstance(value, str) or not value.isascii():
        raise _bad(value, at, "an IP address string")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _bad(value, at, "an IP address string") from None
    return value


def address_or_empty(value: Any, at: str) -> str:
    return "" if value == "" else address(value, at)


def port_text(value: Any, at: str) -> str:
    """Docker's host port, as a string: "" (not chosen) or a port number."""
    if value == "":
        return value
    if not isinstance(value, str) or not (value.isascii() and value.isdigit() and len(value) <= 5):
        raise _bad(value, at, 'a port number as a string, or ""')
    if int(value) > 65535:
        raise _bad(value, at, 'a port number as a string, or ""')
    return value


def network(value: Any, at: str) -> tuple[str, str]:
    """(interface, CIDR) of one interface address."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _bad(value, at, "[interface, CIDR]")
    iface = text(value[0], f"{at}[0]")
    cidr = value[1]
    if not isinstance(cidr, str) or not cidr.isascii():
        raise _bad(cidr, f"{at}[1]", "a CIDR string (10.0.0.1/24)")
    try:
        ipaddress.ip_interface(cidr)
    except ValueError:
        raise _bad(cidr, f"{at}[1]", "a CIDR string (10.0.0.1/24)") from None
    return (iface, cidr)


def optional(check: Check) -> Check:
    return lambda value, at: None if value is None else check(value, at)


def many(check: Check) -> Check:
    """A JSON list, as a tuple of checked items."""

    def each(value: Any, at: str) -> tuple:
        if not isinstance(value, list):
            raise _bad(value, at, "a list")
        return tuple(check(item, f"{at}[{i}]") for i, item in enumerate(value))

    return each


def record(cls: type, spec: dict[str, tuple[Check, Any]]) -> Check:
    """A JSON object as `cls(**fields)`; `spec`: field -> (check, default or _REQUIRED); unknown keys are ignored."""

    def build(value: Any, at: str) -> Any:
        if not isinstance(value, dict):
            raise _bad(value, at, "an object")
        kwargs = {}
        for name, (check, default) in spec.items():
            where = f"{at}.{name}" if at else name
            if name not in value:
                if default is _REQUIRED:
                    raise FieldError(f"{where} is missing")
                continue
            kwargs[name] = check(value[name], where)
        return cls(**kwargs)

    return build


def _port_range(value: Any, at: str) -> PortRange:
    rng = record(PortRange, {"first": (port, _REQUIRED), "last": (port, _REQUIRED)})(value, at)
    if rng.first > rng.last:
        raise FieldError(f"{at} is {rng.first}-{rng.last}: expected first <= last")
    return rng


_opt_text = optional(text)

host = record(
    HostFacts,
    {
        "hostname": (text, _REQUIRED),
        "kernel": (text, _REQUIRED),
        "is_root": (boolean, _REQUIRED),
        "addresses": (many(address), ()),
        "ephemeral_range": (optional(_port_range), None),
        "reserved_ports": (many(_port_range), ()),
        "networks": (many(network), ()),
        "route_localnet": (many(text), ()),
    },
)
backend_status = record(
    BackendStatus,
    {
        "backend": (one_of(*BACKENDS), _REQUIRED),
        "family": (optional(one_of(*TABLE_FAMILIES)), _REQUIRED),
        "read": (boolean, _REQUIRED),
        "rules": (count, 0),
        "reason": (_opt_text, None),
    },
)
rule_source = record(
    RuleSource,
    {
        "backend": (one_of(*BACKENDS), _REQUIRED),
        "family": (optional(one_of(*TABLE_FAMILIES)), _REQUIRED),
        "format": (one_of(*FORMATS), _REQUIRED),
        "text": (text, _REQUIRED),
        "origin": (text, _REQUIRED),
    },
)
proxy_args = record(
    ProxyArgs,
    {
        "proto": (text, _REQUIRED),
        "host_ip": (address, _REQUIRED),
        "host_port": (port, _REQUIRED),
        "container_ip": (address, _REQUIRED),
        "container_port": (port, _REQUIRED),
    },
)
_pid = optional(integer(0, 2**31 - 1))
socket_ = record(
    Socket,
    {
        "family": (one_of(*FAMILIES), _REQUIRED),
        "protocol": (text, _REQUIRED),
        "address": (address, _REQUIRED),
        "port": (port, _REQUIRED),
        "pid": (_pid, None),
        "process": (_opt_text, None),
        "cmdline": (many(text), ()),
        "proxy": (optional(proxy_args), None),
        "user": (_opt_text, None),
    },
)
connection = record(
    Connection,
    {
        "family": (one_of(*FAMILIES), _REQUIRED),
        "protocol": (text, _REQUIRED),
        "local_port": (port, _REQUIRED),
        "pid": (_pid, None),
        "process": (_opt_text, None),
    },
)
engine = record(
    EngineInfo,
    {
        "reachable": (boolean, _REQUIRED),
        "endpoint": (_opt_text, None),
        "version": (_opt_text, None),
        "name": (_opt_text, None),
        "reason": (_opt_text, None),
    },
)
_mapping = record(
    PortMapping,
    {
        "container_port": (port, _REQUIRED),
        "protocol": (text, _REQUIRED),
        "host_ip": (address_or_empty, _REQUIRED),
        "host_port": (port_text, _REQUIRED),
    },
)
_network = record(
    ContainerNetwork,
    {"name": (text, _REQUIRED), "ipv4": (optional(address), None), "ipv6": (optional(address), None)},
)
container = record(
    Container,
    {
        "id": (text, _REQUIRED),
        "name": (text, _REQUIRED),
        "image": (text, _REQUIRED),
        "state": (text, _REQUIRED),
        "network_mode": (text, _REQUIRED),
        "networks": (many(_network), ()),
        "requested": (many(_mapping), ()),
        "in_force": (many(_mapping), ()),
        "publish_all": (boolean, False),
    },
)


def field(data: dict, name: str, check: Check, default: Any = _REQUIRED) -> Any:
    """One top-level field of the capture, checked."""
    if name not in data:
        if default is _REQUIRED:
            raise FieldError(f"{name} is missing")
        return default
    return check(data[name], name)
