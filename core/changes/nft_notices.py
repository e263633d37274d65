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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from portscope.core.changes.netlink import messages
from portscope.core.changes.nft_generation import (
    NETLINK_NETFILTER,
    NEWGEN,
    NFGENMSG,
    NFNL_SUBSYS_NFTABLES,
    attribute,
    generation_id,
)

NFNLGRP_NFTABLES = 7
_BUFFER = 1 << 20  # a burst that overflows it is still one change (ENOBUFS)
#: NFT_MSG_NEWRULE and NFT_MSG_DELRULE: a rule added or deleted, in the chain its attribute 2 names.
_RULE_NOTICES = frozenset({NFNL_SUBSYS_NFTABLES << 8 | 6, NFNL_SUBSYS_NFTABLES << 8 | 8})
NFTA_RULE_CHAIN = 2
#: nfgenmsg's family (NFPROTO_*) as nft names it.
_FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}


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

    def follow(self, changed: Callable[[Commit | None], None], stopping: threading.Event) -> str | None:
        """Call `changed(commit)` once per committed change (the new generation that ends its notices; None when
        notices were lost: the buffer overflowed) until `stopping` is set (None), or the socket fails (why, in a
        few words)."""
        batch = _Batch()
        try:
            while not stopping.is_set():
                try:
                    data = self._socket.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    batch = _Batch()
                    changed(None)  # more notices than the buffer holds: some were missed
                    continue
                for commit in batch.read(data):
                    changed(commit)
        except OSError as exc:
            return exc.strerror or str(exc)
        finally:
            self._socket.close()
        return None


@dataclass(frozen=True, slots=True)
class Commit:
    """One committed change: its generation (None: not read), and the tables its notices name as (nft family,
    table name; None when a notice named none that could be read).

    `chains`: for each table that only rule notices named, the chains they named; a table named by any other
    notice (the table itself, a chain, a set or its elements) is not in it: it changed as a whole."""

    generation: int | None
    tables: frozenset[tuple[str, str]] | None
    chains: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict, hash=False)


class _Batch:
    """The notices of the change being committed, until the new generation that ends it."""

    def __init__(self) -> None:
        # None at first: a change whose first notices came before this subscription (or were lost) names too few.
        self.tables: set[tuple[str, str]] | None = None
        self.chains: dict[tuple[str, str], set[str] | None] = {}  # None: the table changed as a whole

    def read(self, data: bytes) -> list[Commit]:
        """The changes one datagram of notices ends."""
        out: list[Commit] = []
        for kind, payload, end in messages(data):
            if kind == NEWGEN:
                tables = None if self.tables is None else frozenset(self.tables)
                chains = {table: frozenset(named) for table, named in self.chains.items() if named is not None}
                out.append(Commit(generation_id(data, payload, min(end, len(data))), tables, chains))
                self.tables, self.chains = set(), {}
            elif kind >> 8 == NFNL_SUBSYS_NFTABLES and self.tables is not None:
                end = min(end, len(data))
                table = _table(data, payload, end)
                if table is None:
                    self.tables = None
                    continue
                self.tables.add(table)
                chain = _name(attribute(data, payload, end, NFTA_RULE_CHAIN)) if kind in _RULE_NOTICES else None
                named = self.chains.setdefault(table, set())
                if chain is None:
                    self.chains[table] = None
                elif named is not None:
                    named.add(chain)
        return out


def _table(data: bytes, payload: int, end: int) -> tuple[str, str] | None:
    """(nft family, table name) of an nf_tables object notice: every kind names its table in attribute 1."""
    if payload + NFGENMSG.size > end:
        return None
    family = _FAMILIES.get(data[payload])
    name = _name(attribute(data, payload, end, 1))
    if family is None or name is None:
        return None
    return family, name


def _name(value: bytes | None) -> str | None:
    """A name attribute's text (NUL-terminated), or None."""
    return None if value is None else value.split(b"\0", 1)[0].decode("utf-8", "replace")
