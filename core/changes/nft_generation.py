"""nf_tables' generation number: the kernel counts every committed change to this namespace's ruleset.

One netlink request (NFT_MSG_GETGEN) answers it, whatever the size of the ruleset: a change check for
native nftables and iptables-nft alike that, unlike `nft monitor`, is right from the first look (the
monitor loads the whole ruleset before it reports anything: seconds at 30,000 rules, changes made
meanwhile are never reported).
"""

from __future__ import annotations

import socket
import struct

from portscope.core.changes.netlink import NLMSG_ERROR, messages, refusal, request

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWGEN, NFT_MSG_GETGEN = 15, 16
NEWGEN = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN  # the message that carries (and announces) a generation
NFTA_GEN_ID = 1
NFGENMSG = struct.Struct("=BBH")  # struct nfgenmsg: family, version, resource id
ATTR = struct.Struct("=HH")  # struct nlattr: length, type


def generation() -> int:
    """The current generation of this namespace's nf_tables ruleset. OSError when it cannot be asked
    (no netlink, or not permitted: reading the ruleset needs root)."""
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)
    kind = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as nl:
        nl.settimeout(2.0)
        nl.send(request(kind, 0, 1, body))
        data = nl.recv(8192)
    found = next(messages(data), None)
    if found is None:
        raise OSError("an empty netlink answer")
    kind, payload, end = found
    if kind == NLMSG_ERROR:
        raise refusal(data, payload)
    if kind != NEWGEN:
        raise OSError(f"unexpected netlink answer {kind:#x}")
    found_id = generation_id(data, payload, min(end, len(data)))
    if found_id is None:
        raise OSError("no generation id in the netlink answer")
    return found_id


def generation_id(data: bytes, payload: int, end: int) -> int | None:
    """The generation a NEWGEN message (its payload from `payload` to `end`) carries, or None."""
    value = attribute(data, payload, end, NFTA_GEN_ID)
    return int.from_bytes(value[:4], "big") if value is not None and len(value) >= 4 else None


def attribute(data: bytes, payload: int, end: int, wanted: int) -> bytes | None:
    """The value of attribute `wanted` of an nf_tables message whose payload (an nfgenmsg, then attributes) runs
    from `payload` to `end`, or None."""
    offset = payload + NFGENMSG.size
    while offset + ATTR.size <= end:
        size, attr = ATTR.unpack_from(data, offset)
        if size < ATTR.size:
            return None
        if attr & 0x3FFF == wanted:
            return data[offset + ATTR.size : min(offset + size, end)]
        offset += (size + 3) & ~3
    return None
