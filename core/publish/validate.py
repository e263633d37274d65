"""Validators for everything that ends up in rule text or in the state: pure functions, InputError on bad input."""

from __future__ import annotations

import ipaddress
import re

from core.publish.errors import InputError

PROTOCOLS = ("tcp", "udp", "sctp")
_ID_RE = re.compile(r"ps-[0-9a-f]{8}")
_CONTAINER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REASON_BAD = re.compile(r"[\x00-\x1f\x7f\"'`\\]")
_IFACE_RE = re.compile(r"[A-Za-z0-9_.@:-]{1,15}")  # IFNAMSIZ - 1 characters, none that rule text would read
MAX_REASON = 200

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
    """An IPv4 or IPv6 address (no prefix, no zone)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not an IP address: use e.g. 0.0.0.0, 127.0.0.1 or [::]") from None


def check_target_address(addr: IPAddress) -> IPAddress:
    """An address traffic can be DNATed to: unicast, not loopback, not unspecified."""
    if addr.is_unspecified or addr.is_loopback or addr.is_multicast:
        raise InputError(f"target {addr} cannot receive forwarded traffic: give a container or a unicast address")
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
        shown = text.encode("unicode_escape").decode("ascii")[:60]
        raise InputError(f"{shown!r} is not a container name, id or IP address: check `docker ps`")
    return text


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


def check_rule_protocol(proto: str) -> str:
    """tcp, udp or sctp, exactly as rule text spells it."""
    if proto not in PROTOCOLS:
        raise ValueError(f"protocol {proto!r}")
    return proto
