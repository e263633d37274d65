"""Netlink messages as the kernel packs them, several to a datagram (linux/netlink.h)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port id
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3


def request(kind: int, flags: int, sequence: int, body: bytes) -> bytes:
    """One request message (the kernel fills in the sender)."""
    return HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | flags, sequence, 0) + body


def messages(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, where its payload starts, where the message ends) of each message in a datagram, in order; a
    message shorter than its header ends the walk."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _, _, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            return
        yield kind, offset + HEADER.size, offset + length
        offset += (length + 3) & ~3


def refusal(data: bytes, payload: int) -> OSError:
    """The error an NLMSG_ERROR message carries (its payload starts with the negated errno)."""
    (code,) = struct.unpack_from("=i", data, payload)
    return OSError(-code, os.strerror(-code))
