"""nf_tables' change notices: the kernel's own messages for every change to this namespace's ruleset.

A netlink socket that joins the nf_tables multicast group is sent a message for each table, chain, rule,
set or element added or deleted, and one for the new generation that ends each committed batch, by
iptables-nft and nft alike. Unlike `nft monitor`, nothing is loaded first: a change is known the moment
it is committed, and nothing is polled in between. Joining the group needs CAP_NET_ADMIN (root).
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable

from portscope.core.changes.netlink import messages
from portscope.core.changes.nft_generation import NETLINK_NETFILTER, NEWGEN

NFNLGRP_NFTABLES = 7
_BUFFER = 1 << 20  # a burst that overflows it is still one change (ENOBUFS)


class NftNotices:
    """A subscription to nf_tables' change notices, made at once: what changes after `__init__` is reported.

    OSError from `__init__` when it cannot be made (no netlink, or not permitted).
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
            self._socket.bind((0, 1 << (NFNLGRP_NFTABLES - 1)))  # (any port id, the groups as a bit mask)
        except OSError:
            self._socket.close()
            raise
        self._socket.settimeout(1.0)

    def follow(self, changed: Callable[[], None], stopping: threading.Event) -> str | None:
        """Call `changed()` once per committed change (the new generation that ends its notices) until `stopping`
        is set (None), or the socket fails (why, in a few words)."""
        try:
            while not stopping.is_set():
                try:
                    data = self._socket.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    changed()  # more notices than the buffer holds: some generation was missed
                    continue
                for _ in range(_generations(data)):
                    changed()
        except OSError as exc:
            return exc.strerror or str(exc)
        finally:
            self._socket.close()
        return None


def _generations(data: bytes) -> int:
    """How many new-generation messages one datagram of notices holds."""
    return sum(kind == NEWGEN for kind, _, _ in messages(data))
