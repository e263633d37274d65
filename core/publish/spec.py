"""Docker's `-p` syntax, `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, and binding references."""

from __future__ import annotations

import re
from dataclasses import dataclass

from portscope.core.model import bracket
from portscope.core.publish.errors import InputError
from portscope.core.publish.validate import (
    check_binding_id,
    is_binding_id,
    parse_address,
    parse_port,
    parse_protocol,
    shown,
)

_RANGE = re.compile(r"[0-9]+-[0-9]*")


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A parsed `-p` value. `host_ip`/`host_port` are None when left blank."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str | None = None
    host_port: int | None = None

    def __str__(self) -> str:
        host = ""
        if self.host_ip is not None:
            host = f"{bracket(self.host_ip)}:{self.host_port or ''}:"
        elif self.host_port is not None:
            host = f"{self.host_port}:"
        return f"{host}{self.container_port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class BindingRef:
    """What `unpublish`/`block` name: a binding id, or a host port (with protocol, and address if given)."""

    binding_id: str | None = None
    host_port: int | None = None
    protocol: str = "tcp"
    host_ip: str | None = None


def parse_port_spec(text: str) -> PortSpec:
    """Parse a `-p` value; InputError with a one-line hint for anything else (ranges are refused)."""
    if not text or not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise InputError(f"{shown(text)} is not a port spec: use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp]")
    body, slash, proto_text = text.partition("/")
    protocol = parse_protocol(proto_text) if slash else "tcp"
    host_ip_text, host_port_text, container_text = _split(body)
    if any(_RANGE.fullmatch(part) for part in (host_port_text, container_text)):
        raise InputError(f"{shown(text)}: port ranges are not supported; publish one port at a time")
    try:
        container_port = parse_port(container_text, "container port")
        host_port = parse_port(host_port_text, "host port") if host_port_text else None
    except InputError as exc:
        raise InputError(f"{shown(text)}: {exc}") from None
    host_ip = None
    if host_ip_text is not None:
        host_ip = str(parse_address(host_ip_text, "host address")) if host_ip_text else None
    return PortSpec(container_port=container_port, protocol=protocol, host_ip=host_ip, host_port=host_port)


def _split(body: str) -> tuple[str | None, str, str]:
    """(host ip or None, host port text, container port text); IPv6 host addresses may be in brackets."""
    if body.startswith("["):
        addr, close, rest = body[1:].partition("]")
        if not close or not rest.startswith(":") or rest.count(":") != 2:
            raise InputError(f"{shown(body)}: write an IPv6 host address as [ADDR]:HOST_PORT:CONTAINER_PORT")
        _, host_port, container = rest.split(":")
        return addr, host_port, container
    parts = body.rsplit(":", 2)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return None, parts[0], parts[1]
    return None, "", parts[0]


def parse_binding_ref(text: str) -> BindingRef:
    """`ps-1a2b3c4d`, or `[HOST_IP:]HOST_PORT[/PROTO]`."""
    if is_binding_id(text):
        return BindingRef(binding_id=check_binding_id(text))
    if not text or not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise InputError(f"{shown(text)} is not a binding: give its id (ps-xxxxxxxx) or HOST_PORT[/tcp|udp|sctp]")
    body, slash, proto_text = text.partition("/")
    protocol = parse_protocol(proto_text) if slash else "tcp"
    host_ip = None
    if body.startswith("["):
        addr, close, rest = body[1:].partition("]")
        if not close or not rest.startswith(":"):
            raise InputError(f"{shown(text)}: write an IPv6 host address as [ADDR]:HOST_PORT")
        host_ip, body = str(parse_address(addr, "host address")), rest[1:]
    elif ":" in body:
        addr, _, body = body.rpartition(":")
        host_ip = str(parse_address(addr, "host address"))
    return BindingRef(host_port=parse_port(body, "host port"), protocol=protocol, host_ip=host_ip)
