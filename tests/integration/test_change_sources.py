"""core.changes against the real kernel, in namespaces made here: nf_tables' generation and change notices,
iptables-legacy's
fingerprint and shape, the listening sockets' fingerprint, and the watcher's notifications for nf_tables,
legacy and listeners."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import need_root_tools
from tests.sandbox.engine import REPO_ROOT
from tests.sandbox.line_driver import LineDriver
from tests.sandbox.netns import NetNs, netns

RULE = ["-p", "tcp", "--dport", "18090", "-j", "DNAT", "--to-destination", "10.9.0.2:80"]
SAME_SIZE = ["-p", "tcp", "--dport", "18091", "-j", "DNAT", "--to-destination", "10.9.0.2:80"]


@pytest.fixture
def ns() -> Iterator[NetNs]:
    need_root_tools("iptables-legacy", "iptables-nft", "nft", "busybox", "nsenter")
    with netns("pschg") as made:
        yield made


PROBE_ENV = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def probe(ns: NetNs, what: str) -> str:
    argv = [sys.executable, "-m", "tests.integration.change_probe", what]
    return ns.run(argv, cwd=REPO_ROOT, env=PROBE_ENV).stdout.strip()


def start_probe(ns: NetNs, what: str) -> LineDriver:
    """A probe that runs until closed (`watch`, `notices`); each of its lines within 30 s, or the test fails."""
    argv = ns.argv([sys.executable, "-m", "tests.integration.change_probe", what])
    return LineDriver(argv, cwd=REPO_ROOT, env=PROBE_ENV, bound=30.0)


def test_legacy_fingerprint_follows_rules_not_counters(ns: NetNs) -> None:
    assert probe(ns, "legacy") == "none"  # no legacy table loaded yet
    ns.run(["iptables-legacy", "-t", "nat", "-A", "PREROUTING", *RULE])
    first, first_shape = probe(ns, "legacy"), probe(ns, "shape")
    assert first != "none"
    ns.run(["iptables-legacy", "-t", "nat", "-R", "PREROUTING", "1", *SAME_SIZE])
    replaced = probe(ns, "legacy")
    assert replaced != first
    assert probe(ns, "shape") == first_shape  # same size: only the whole fingerprint sees it
    ns.run(["iptables-legacy", "-t", "nat", "-Z"])
    assert probe(ns, "legacy") == replaced  # counters are not rules
    ns.run(["iptables-legacy", "-t", "nat", "-A", "OUTPUT", *RULE])
    assert probe(ns, "shape") != first_shape
    ns.run(["ip6tables-legacy", "-t", "nat", "-N", "PSTEST"])
    assert probe(ns, "legacy") not in (first, replaced)


def test_nf_tables_generation_counts_changes_of_either_nf_tables_tool(ns: NetNs) -> None:
    first = int(probe(ns, "generation"))
    ns.run(["nft", "add", "table", "ip", "pstgen"])
    added = int(probe(ns, "generation"))
    assert added > first
    ns.run(["nft", "list", "ruleset"])
    assert int(probe(ns, "generation")) == added  # reading is no change
    ns.run(["iptables-nft", "-t", "nat", "-A", "PREROUTING", *RULE])
    nft_rule = int(probe(ns, "generation"))
    assert nft_rule > added
    ns.run(["iptables-legacy", "-t", "nat", "-A", "PREROUTING", *RULE])
    assert int(probe(ns, "generation")) == nft_rule  # legacy tables are not nf_tables (their fingerprint sees them)


def test_nf_tables_notices_come_for_changes_of_either_nf_tables_tool(ns: NetNs) -> None:
    """Each committed change is noticed once (its objects' notices end in one new generation), with the generation
    it made and the tables it touched (not for the first: some of its notices may have come before the follower
    joined): a table added with nft, a rule with iptables-nft (in both families), a chain and a rule in the nft
    table, rules in two chains at once, the iptables rule deleted (a table only rule notices named comes with their
    chains); a read is no change; told to stop, the follower stops without a failure and
    without a notice left over."""
    follower = start_probe(ns, "notices")
    try:
        assert follower.answer() == "joined"
        for change, tables in (
            (["nft", "add", "table", "ip", "pstfirst"], "?"),
            (["nft", "add", "table", "ip", "pstnotice"], "ip/pstnotice"),
            (["iptables-nft", "-t", "nat", "-A", "PREROUTING", *RULE], "ip/nat"),
            (
                ["ip6tables-nft", "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
                "ip6/filter",
            ),
            (["nft", "add", "chain", "ip", "pstnotice", "c"], "ip/pstnotice"),
            (["nft", "add", "rule", "ip", "pstnotice", "c", "tcp", "dport", "80", "accept"], "ip/pstnotice:c"),
            (["nft", "add", "chain", "ip", "pstnotice", "d"], "ip/pstnotice"),
            (["nft", "add rule ip pstnotice c udp dport 53 accept; add rule ip pstnotice d drop"], "ip/pstnotice:c+d"),
            (["iptables-nft", "-t", "nat", "-D", "PREROUTING", *RULE], "ip/nat:PREROUTING"),
        ):
            ns.run(["nft", "list", "ruleset"])
            ns.run(change)
            word, generation, touched = follower.answer().split(" ")
            assert (word, touched) == ("changed", tables), change
            assert int(generation) == int(probe(ns, "generation")), change
    finally:
        follower.close()
    assert follower.answer() == "stopped"
    assert follower.answer() == ""  # no notice was left over


def test_listener_fingerprint_follows_listeners(ns: NetNs) -> None:
    before = probe(ns, "listeners")
    listener = subprocess.Popen(ns.argv(["busybox", "nc", "-l", "-p", "18092"]), stdout=subprocess.DEVNULL)
    try:
        opened = probe(ns, "listeners")
        assert opened != before
    finally:
        listener.kill()
        listener.wait()
    assert probe(ns, "listeners") == before


def notified(watcher: LineDriver, kind: str) -> bool:
    """True once a notification names `kind` (others may come first: the missing engine's, at start)."""
    for _ in range(20):
        got = watcher.answer().split()
        if not got or kind in got:
            return kind in got
    return False


def test_watcher_notifies_each_kind_of_change(ns: NetNs) -> None:
    watcher = start_probe(ns, "watch")
    listener = None
    try:
        assert watcher.answer() == "watching"
        ns.run(["nft", "add", "table", "ip", "pstest"])
        assert notified(watcher, "rules")
        ns.run(["iptables-nft", "-t", "nat", "-A", "PREROUTING", *RULE])
        assert notified(watcher, "rules")
        ns.run(["iptables-legacy", "-t", "nat", "-A", "PREROUTING", *RULE])
        assert notified(watcher, "rules")
        listener = subprocess.Popen(ns.argv(["busybox", "nc", "-l", "-p", "18093"]), stdout=subprocess.DEVNULL)
        assert notified(watcher, "sockets")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        watcher.close()
