"""A cheap fingerprint of this network namespace's listening sockets (netlink sock_diag).

The kernel filters by state, so only listeners come back — TCP in LISTEN, UDP not connected — however
many connections the host carries; no /proc/PID walk (which processes hold them is the full read's job).
"""

from __future__ import annotations

import hashlib
import socket
import struct

from portscope.core.changes.netlink import NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR, messages, refusal, request

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
TCP_LISTEN, TCP_CLOSE = 10, 7  # an unconnected UDP socket is in TCP_CLOSE

_REQUEST = struct.Struct("=BBBxI48x")  # struct inet_diag_req_v2 (family, protocol, ext, states, any socket id)
_MESSAGE_SIZE = 72  # struct inet_diag_msg: family..retrans (4), socket id (48), expires..inode (20)
_QUERIES = (
    (socket.AF_INET, socket.IPPROTO_TCP, 1 << TCP_LISTEN),
    (socket.AF_INET6, socket.IPPROTO_TCP, 1 << TCP_LISTEN),
    (socket.AF_INET, socket.IPPROTO_UDP, 1 << TCP_CLOSE),
    (socket.AF_INET6, socket.IPPROTO_UDP, 1 << TCP_CLOSE),
)


def fingerprint() -> bytes:
    """A digest of every listening TCP socket and bound, unconnected UDP socket (address, port, inode).

    OSError when netlink is not available.
    """
    found: list[bytes] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(2.0)  # an answer that never ends (malformed) is an OSError, not a stuck watcher
        for seq, (family, protocol, states) in enumerate(_QUERIES, start=1):
            nl.send(request(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, seq, _REQUEST.pack(family, protocol, 0, states)))
            found += [bytes([protocol]) + entry for entry in _dump(nl)]
    return hashlib.blake2b(b"".join(sorted(found)), digest_size=16).digest()


def _dump(nl: socket.socket) -> list[bytes]:
    """Each answer's family, socket id (addresses and ports) and inode, until the dump is done."""
    out: list[bytes] = []
    while True:
        data = nl.recv(65536)
        for kind, payload, _ in messages(data):
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                raise refusal(data, payload)
            msg = data[payload : payload + _MESSAGE_SIZE]
            out.append(msg[:1] + msg[4:40] + msg[68:72])  # family, ports, src, dst; inode
