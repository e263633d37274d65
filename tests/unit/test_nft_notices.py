"""How a batch of nf_tables notices becomes one `Commit`: the tables it named and, for a table only rule notices
named, their chains. The datagrams are laid out as the kernel sends them (nlmsghdr, nfgenmsg, attributes);
tests/integration/test_change_sources.py checks the same against the kernel's own notices."""

from __future__ import annotations

import struct

from portscope.core.changes.netlink import HEADER
from portscope.core.changes.nft_generation import ATTR, NEWGEN, NFGENMSG, NFNL_SUBSYS_NFTABLES
from portscope.core.changes.nft_notices import Commit, _Batch

NEWTABLE, NEWCHAIN, NEWRULE, DELRULE, NEWSETELEM = 0, 3, 6, 8, 12
IP, IP6 = 2, 10  # nfgenmsg families
DOCKER = ("ip", "docker-bridges")
MINE = ("ip6", "mine")


def attribute(kind: int, value: bytes) -> bytes:
    padded = value + b"\0" * (-len(value) % 4)
    return ATTR.pack(ATTR.size + len(value), kind) + padded


def message(kind: int, family: int, *attributes: bytes) -> bytes:
    body = NFGENMSG.pack(family, 0, 0) + b"".join(attributes)
    return HEADER.pack(HEADER.size + len(body), kind, 0, 0, 0) + body


def notice(msg: int, family: int, table: str, chain: str | None = None) -> bytes:
    names = [attribute(1, table.encode() + b"\0")]
    if chain is not None:
        names.append(attribute(2, chain.encode() + b"\0"))
    return message(NFNL_SUBSYS_NFTABLES << 8 | msg, family, *names)


def generation(number: int) -> bytes:
    return message(NEWGEN, 0, attribute(1, struct.pack(">I", number)))


def joined() -> _Batch:
    """A batch reader past its first commit (whose first notices may have come before it joined)."""
    batch = _Batch()
    assert batch.read(notice(NEWRULE, IP, "docker-bridges", "x") + generation(1)) == [Commit(1, None)]
    return batch


def test_a_table_only_rule_notices_named_comes_with_their_chains() -> None:
    batch = joined()
    data = notice(NEWRULE, IP, "docker-bridges", "nat-prerouting-and-output")
    data += notice(DELRULE, IP, "docker-bridges", "nat-POSTROUTING") + notice(NEWRULE, IP6, "mine", "c")
    (commit,) = batch.read(data + generation(2))
    assert (commit.generation, commit.tables) == (2, frozenset({DOCKER, MINE}))
    assert commit.chains == {DOCKER: {"nat-prerouting-and-output", "nat-POSTROUTING"}, MINE: {"c"}}


def test_any_other_notice_makes_its_table_whole() -> None:
    batch = joined()
    for other in (NEWTABLE, NEWCHAIN, NEWSETELEM):
        data = notice(NEWRULE, IP, "docker-bridges", "a") + notice(other, IP, "docker-bridges", "a")
        (commit,) = batch.read(data + notice(NEWRULE, IP6, "mine", "c") + generation(3))
        assert commit.tables == {DOCKER, MINE}, other
        assert commit.chains == {MINE: {"c"}}, other  # the other table still names its chain
    (commit,) = batch.read(notice(NEWRULE, IP, "docker-bridges") + generation(4))  # a rule notice without a chain
    assert (commit.tables, commit.chains) == ({DOCKER}, {})


def test_each_commit_starts_afresh_and_one_datagram_may_end_several() -> None:
    batch = joined()
    first = notice(NEWCHAIN, IP, "docker-bridges") + generation(5)
    commits = batch.read(first + notice(NEWRULE, IP, "docker-bridges", "a") + generation(6))
    assert [(c.generation, c.tables, c.chains) for c in commits] == [(5, {DOCKER}, {}), (6, {DOCKER}, {DOCKER: {"a"}})]
    assert batch.read(generation(7)) == [Commit(7, frozenset())]  # nothing named: no table changed
    assert hash(commits[1]) == hash(Commit(6, frozenset({DOCKER})))  # the chains take no part in its hash
