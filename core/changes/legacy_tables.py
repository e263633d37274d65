"""A cheap fingerprint of iptables-legacy's tables, straight from the kernel (no dump tool, no parsing).

Legacy iptables has no change notification: every change replaces a whole table in the kernel. The
kernel hands a table out as one blob (`IPT_SO_GET_ENTRIES`, what `iptables-legacy-save` reads too);
its bytes, with each rule's packet and byte counters left out (traffic changes those, not rules), are
the fingerprint. Reading a table of 10,000 rules this way is a memory copy and one walk over its entries.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from portscope.core.rules.rule_tools import legacy_tables


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a family's rule entry keeps what the fingerprint needs (linux/netfilter_ipv{4,6}/ip{,6}_tables.h)."""

    family: int  # socket family of the raw socket the request goes through
    level: int  # getsockopt level
    names: str  # /proc/net file listing the loaded tables
    next_offset_at: int  # u16 offset of the next entry, inside an entry
    counters_at: int  # struct xt_counters (two u64) inside an entry


#: struct ipt_entry: ipt_ip (84) nfcache (4) target_offset (2) next_offset (2) comefrom (4) counters (16).
IPV4 = Layout(socket.AF_INET, socket.IPPROTO_IP, "ip_tables_names", next_offset_at=90, counters_at=96)
#: struct ip6t_entry: ip6t_ip6 (136) nfcache (4) target_offset (2) next_offset (2) comefrom (4) counters (16).
IPV6 = Layout(socket.AF_INET6, socket.IPPROTO_IPV6, "ip6_tables_names", next_offset_at=142, counters_at=152)

GET_INFO = 64  # IPT_SO_GET_INFO == IP6T_SO_GET_INFO
GET_ENTRIES = 65  # IPT_SO_GET_ENTRIES == IP6T_SO_GET_ENTRIES
_INFO = struct.Struct("32sI5I5III")  # name, valid_hooks, hook_entry[5], underflow[5], num_entries, size
_ENTRIES_HEAD = 40  # struct ipt_get_entries: name[32], size (u32), padding to the 8-byte aligned entries
_COUNTERS = 16

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def shape(proc: str = "/proc") -> bytes | None:
    """Every legacy table's chain offsets, rule count and size: a change check of a few microseconds that sees
    rules and chains added or removed, but not a rule replaced by one of the same size (`fingerprint` does).
    None when no legacy table is loaded; OSError when the kernel refuses (not root)."""
    return _digest(proc, lambda fd, layout, name: _info(fd, layout, name)[32:])


def fingerprint(proc: str = "/proc") -> bytes | None:
    """A digest of every legacy table's rules (IPv4 and IPv6); None when no legacy table is loaded.

    OSError when the kernel refuses (not root).
    """
    return _digest(proc, _table_rules)


def _digest(proc: str, read: Callable[[int, Layout, str], bytes]) -> bytes | None:
    digest = hashlib.blake2b(digest_size=16)
    seen = False
    for layout in (IPV4, IPV6):
        names = legacy_tables(os.path.join(proc, "net", layout.names)) or []
        if not names:
            continue
        with socket.socket(layout.family, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
            for name in sorted(names):
                seen = True
                digest.update(name.encode() + b"\0")
                digest.update(read(sock.fileno(), layout, name))
    return digest.digest() if seen else None


def _info(fd: int, layout: Layout, name: str) -> bytes:
    """struct ipt_getinfo of the table."""
    info = ctypes.create_string_buffer(_INFO.pack(name.encode(), 0, *[0] * 10, 0, 0), _INFO.size)
    _getsockopt(fd, layout.level, GET_INFO, info)
    return info.raw


def _table_rules(fd: int, layout: Layout, name: str) -> bytes:
    """The table's info and its entries without their counters."""
    info = _info(fd, layout, name)
    *_, size = _INFO.unpack(info)
    blob = ctypes.create_string_buffer(struct.pack("32sI", name.encode(), size), _ENTRIES_HEAD + size)
    _getsockopt(fd, layout.level, GET_ENTRIES, blob)
    entries = memoryview(blob.raw)[_ENTRIES_HEAD:]
    parts: list[bytes | memoryview] = [info[32:]]  # hooks, underflows, entry count and size: where each chain starts
    offset = 0
    while offset < size:
        step = struct.unpack_from("H", entries, offset + layout.next_offset_at)[0]
        if step <= 0:
            break
        counters = offset + layout.counters_at
        parts.append(entries[offset:counters])
        parts.append(entries[counters + _COUNTERS : offset + step])
        offset += step
    return b"".join(parts)


def _getsockopt(fd: int, level: int, option: int, buffer: ctypes.Array[ctypes.c_char]) -> None:
    length = ctypes.c_uint(len(buffer))
    if _libc.getsockopt(fd, level, option, buffer, ctypes.byref(length)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
