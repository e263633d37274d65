"""core.changes against the real kernel, in namespaces made here: nf_tables' generation, iptables-legacy's
fingerprint and shape, the listening sockets' fingerprint, and the watcher's notifications for nf_tables,
legacy and listeners."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

import pytest

from tests.conftest import need_root_tools
from tests.sandbox.engine import REPO_ROOT
from tests.sandbox.netns import NetNs, netns

RULE = ["-p", "tcp", "--dport", "18090", "-j", "DNAT", "--to-destination", "10.9.0.2:80"]
SAME_SIZE = ["-p", "tcp", "--dport", "18091", "-j", "DNAT", "--to-destination", "10.9.0.2:80"]


@pytest.fixture
def ns() -> Iterator[NetNs]:
    need_root_tools("iptables-legacy", "iptables-nft", "nft", "busybox", "nsenter")
    with netns("pschg") as made:
        yield made


def probe(ns: NetNs, what: str) -> str:
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return ns.run([sys.executable, "-m", "tests.integration.change_probe", what], cwd=REPO_ROOT, env=env).stdout.strip()


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


def kinds(stream: IO[str], bound: float = 30.0) -> list[str]:
    """The kinds of the watcher's next notification (nothing if none comes within `bound` seconds: a hang
    would otherwise stop the whole run)."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(bound)
    return got[0].split() if got else []


def notified(stream: IO[str], kind: str, bound: float = 30.0) -> bool:
    """True once a notification names `kind` (others may come first: the missing engine's, at start)."""
    deadline = time.monotonic() + bound
    while (left := deadline - time.monotonic()) > 0:
        got = kinds(stream, left)
        if not got or kind in got:
            return kind in got
    return False


def test_watcher_notifies_each_kind_of_change(ns: NetNs) -> None:
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    watcher = subprocess.Popen(
        ns.argv([sys.executable, "-m", "tests.integration.change_probe", "watch"]),
        cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert watcher.stdout is not None and watcher.stdin is not None
    listener = None
    try:
        assert kinds(watcher.stdout) == ["watching"]
        ns.run(["nft", "add", "table", "ip", "pstest"])
        assert notified(watcher.stdout, "rules")
        ns.run(["iptables-nft", "-t", "nat", "-A", "PREROUTING", *RULE])
        assert notified(watcher.stdout, "rules")
        ns.run(["iptables-legacy", "-t", "nat", "-A", "PREROUTING", *RULE])
        assert notified(watcher.stdout, "rules")
        listener = subprocess.Popen(ns.argv(["busybox", "nc", "-l", "-p", "18093"]), stdout=subprocess.DEVNULL)
        assert notified(watcher.stdout, "sockets")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        watcher.stdin.close()
        try:
            watcher.wait(timeout=20)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait()
