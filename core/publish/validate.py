"""Validators for everything that ends up in rule text or in the state: pure functions, InputError on bad input."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

from portscope.core.publish.errors import InputError

PROTOCOLS = ("tcp", "udp", "sctp")
_ID_RE = re.compile(r"ps-[0-9a-f]{8}")
_CONTAINER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REASON_BAD = re.compile(r"[\x00-\x1f\x7f\"'`\\]")
_IFACE_RE = re.compile(r"[A-Za-z0-9_.@:-]{1,15}")  # IFNAMSIZ - 1 characters, none that rule text would read
MAX_REASON = 200
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_port(text: str, what: str = "port") -> int:
    """A port 1-65535 from decimal digits."""
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise InputError(f"{what} {text!r} is not a port number: use 1-65535")
    return int(text)


def check_port(value: int, what: str = "port") -> int:
    """An int port 1-65535 (from the state, or computed)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InputError(f"{what} {value!r} is not a port number: use 1-65535")
    return value


def parse_protocol(text: str) -> str:
    """tcp, udp or sctp (any case)."""
    proto = text.lower()
    if proto not in PROTOCOLS:
        raise InputError(f"protocol {text!r} is not supported: use tcp, udp or sctp")
    return proto


def parse_address(text: str, what: str = "address") -> IPAddress:
    """An IPv4 or IPv6 address in plain ASCII: no prefix, no zone (`%eth0`: never in rule text)."""
    if "%" in text and text.isascii() and text.isprintable():
        raise InputError(f"{what} {shown(text)} has a zone (%...): portscope takes addresses without one")
    try:
        if not text.isascii() or not text.isprintable():
            raise ValueError(text)
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InputError(f"{what} {shown(text)} is not an IP address: use e.g. 0.0.0.0, 127.0.0.1 or [::]") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:  # unreachable: "%" refused above
        raise InputError(f"{what} {shown(text)} has a zone (%...): portscope takes addresses without one")
    return addr


def check_host_address(text: str | None, addresses: Collection[str]) -> str:
    """The address a binding listens on: blank is 0.0.0.0; else 0.0.0.0 or ::, 127.0.0.1 (never ::1: IPv6 has
    no route_localnet), or one of `addresses` (the host's own)."""
    if text is None:
        return "0.0.0.0"
    addr = parse_address(text, "host address")
    if addr.is_unspecified:
        return str(addr)
    if addr.is_loopback:
        if addr.version == 6:
            raise InputError("::1 cannot be forwarded to a container (IPv6 has no route_localnet): use 127.0.0.1")
        return str(addr)
    if str(addr) not in addresses:
        raise InputError(f"{addr} is not an address of this host: use one of `ip addr`, 0.0.0.0 or 127.0.0.1")
    return str(addr)


def target_problem(addr: IPAddress) -> str | None:
    """Why traffic cannot be DNATed to `addr` (None: a unicast address it can go to)."""
    if addr.is_unspecified:
        return "is unspecified"
    if addr.is_loopback:
        return "is a loopback address"
    if addr.is_multicast:
        return "is multicast"
    if addr.is_link_local:
        return "is link-local"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _THIS_NETWORK:
        return "is in 0.0.0.0/8 (this network)"
    if addr.is_reserved or (isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local):
        return "is reserved (broadcast, class E, IPv4-mapped or deprecated)"
    return None


def check_target_address(addr: IPAddress) -> IPAddress:
    """An address traffic can be DNATed to: unicast, routable from here, not loopback, link-local or reserved."""
    problem = target_problem(addr)
    if problem:
        raise InputError(f"target {addr} {problem}: give a container or a unicast address")
    return addr


def check_reason(text: str | None) -> str | None:
    """`--reason`: printable one-line text without quotes or backslashes, at most 200 characters."""
    if text is None:
        return None
    if _REASON_BAD.search(text) or not text.isprintable():
        raise InputError("--reason must be one line of plain text without quotes or backslashes")
    if len(text) > MAX_REASON:
        raise InputError(f"--reason is longer than {MAX_REASON} characters: shorten it")
    return text


def check_container_ref(text: str) -> str:
    """A container name or id prefix as Docker allows them ([A-Za-z0-9][A-Za-z0-9_.-]*)."""
    if not _CONTAINER_RE.fullmatch(text):
        raise InputError(f"{shown(text)} is not a container name, id or IP address: check `docker ps`")
    return text


def shown(text: str) -> str:
    """User text as it may stand in a one-line message: escaped, quoted, at most 60 characters."""
    return repr(text.encode("unicode_escape").decode("ascii")[:60])


def is_binding_id(text: str) -> bool:
    """True for portscope's binding ids (`ps-` and 8 hex digits)."""
    return bool(_ID_RE.fullmatch(text))


def check_binding_id(text: str) -> str:
    if not is_binding_id(text):
        raise InputError(f"{text!r} is not a portscope binding id (ps-xxxxxxxx): see `portscope status`")
    return text


# Guards at the point of rendering: the values come from portscope's own state or the engine, so a
# bad one is a bug or a tampered state file, raised as ValueError rather than reported as user input.


def check_iface(name: str) -> str:
    """An interface name as it may stand in rule text."""
    if not _IFACE_RE.fullmatch(name):
        raise ValueError(f"interface name {name!r}")
    return name


def rule_address(text: str, family: str, *, target: bool = True) -> IPAddress:
    """An address as it may stand in rule text: of `family`, no zone; a target must be a unicast one."""
    if not isinstance(text, str) or not text.isascii() or "%" in text or not text.isprintable():
        raise ValueError(f"address {text!r}")
    addr = ipaddress.ip_address(text)
    if addr.version != (4 if family == "ipv4" else 6):
        raise ValueError(f"address {addr} is not {family}")
    if target and (addr.is_unspecified or addr.is_multicast or addr.is_loopback):
        raise ValueError(f"target {addr} cannot receive forwarded traffic")
    return addr


def check_rule_protocol(proto: str) -> str:
    """tcp, udp or sctp, exactly as rule text spells it."""
    if proto not in PROTOCOLS:
        raise ValueError(f"protocol {proto!r}")
    return proto
