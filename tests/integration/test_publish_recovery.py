"""Atomicity, recovery and concurrency of portscope's rules, in each of the four Docker set-ups.

A batch the kernel refuses leaves the whole ruleset as it was; a flush is repaired by `apply`; a
container that comes back with a new address is followed by `reconcile` and by `watch` on its own;
two `publish` processes at once never leave duplicate or partial rules.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_publish_harness import (
    Portscope,
    container_ip,
    normalized,
    ours,
    refused,
    remove_containers,
    run_web,
    serves,
    session,
)
from tests.sandbox.client import Client, tcp_get
from tests.sandbox.engine import IMAGE, Engine, wait_for

pytestmark = pytest.mark.integration

WEB, OTHER, FILLER = "rec-web", "rec-other", "rec-filler"
FILLERS: list[str] = []
BAD_RULE = "-A PORTSCOPE-FORWARD -p tcp -m tcp --dport 1 -j DNAT --to-destination 10.9.9.9"  # DNAT outside nat


@pytest.fixture(scope="module")
def ps(engine: Engine) -> Iterator[Portscope]:
    with session(engine, WEB, OTHER) as ps:
        try:
            run_web(engine, WEB)
            run_web(engine, OTHER)
            yield ps
        finally:
            remove_containers(engine, *FILLERS)  # the fillers its tests started
            FILLERS.clear()


def _refused_publish(ps: Portscope, spec: str) -> str:
    """Publish through the API with one bad filter rule added to the batch; returns the error line."""
    code = (
        "from portscope.core.publish.ops import publish\n"
        "from portscope.core.publish.errors import RuleRefusedError\n"
        "try:\n"
        f"    publish({WEB!r}, {spec!r}, inject={{'filter': [{BAD_RULE!r}]}})\n"
        "except RuleRefusedError as exc:\n"
        "    print(exc.exit_code, exc)\n"
        "else:\n"
        "    print('accepted')\n"
    )
    proc = ps.api(code)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("existing", [False, True], ids=["first-binding", "with-a-binding"])
def test_a_refused_rule_changes_nothing(ps: Portscope, client: Client, existing: bool) -> None:
    """The nat table goes in first and the filter table fails: the nat part is rolled back, byte for byte."""
    bid = ps.binding_id(ps.ok("publish", WEB, "28001:80")) if existing else None
    before_all = {fam: normalized(ps.engine.iptables_save(fam)) for fam in (4, 6)}
    state_before = ps.ok("status", "--json")
    line = _refused_publish(ps, "28002:80")
    assert line.startswith("6 the kernel refused the rules") and "nothing was changed" in line, line
    assert {fam: normalized(ps.engine.iptables_save(fam)) for fam in (4, 6)} == before_all
    assert ps.ok("status", "--json") == state_before, "the state changed"
    audit = (Path(ps.state_dir) / "audit.log").read_text().splitlines()
    assert json.loads(audit[-1])["result"].startswith("refused")
    assert client.tcp_get(client.engine_ip, 28002, timeout=2) is None
    if bid:
        assert serves(client, 28001, WEB)
        ps.ok("unpublish", bid)


def test_flush_then_apply_restores_traffic(ps: Portscope, client: Client) -> None:
    bid = ps.binding_id(ps.ok("publish", WEB, "28010:80"))
    assert serves(client, 28010, WEB)
    ps.engine.iptables("-t", "nat", "-F", "PORTSCOPE")
    assert refused(client, 28010)
    drift = ps.run("status")
    assert drift.returncode == 1 and "missing: -t nat -A PORTSCOPE " in drift.stdout
    out = ps.ok("apply")
    assert "rewritten" in out
    assert serves(client, 28010, WEB), "apply did not restore traffic"
    assert ps.run("status").returncode == 0
    assert "already in place" in ps.ok("apply"), "apply is not idempotent"
    assert sum(1 for line in ours(ps.save()) if f"portscope:{bid}" in line and "-j DNAT" in line) == 1
    ps.ok("unpublish", bid)


def _move(ps: Portscope, name: str) -> tuple[str, str]:
    """Stop `name`, let another container take its address, start it again: (old ip, new ip)."""
    old = container_ip(ps.engine, name)
    ps.engine.docker("stop", "-t", "1", name)
    filler = f"{FILLER}-{len(FILLERS)}"
    FILLERS.append(filler)
    ps.engine.run_container(filler, IMAGE, "sleep", "3600")  # takes the lowest free address: the one just freed
    ps.engine.docker("start", name)
    new = container_ip(ps.engine, name)
    assert old != new, "the container kept its address; the test needs it to move"
    assert container_ip(ps.engine, filler) == old
    assert wait_for(lambda: tcp_get(ps.engine.ns, new, 80, timeout=2), timeout=30), f"{name} does not serve again"
    return old, new


def test_restart_with_a_new_address_then_reconcile(ps: Portscope, client: Client) -> None:
    bid = ps.binding_id(ps.ok("publish", WEB, "28020:80"))
    assert serves(client, 28020, WEB)
    old, new = _move(ps, WEB)
    assert client.tcp_get(client.engine_ip, 28020, timeout=2) is None, "the stale rule still reaches the container"
    assert ps.run("status").returncode == 1
    out = ps.ok("reconcile")
    assert f"moved {bid}" in out and f"{old} -> {new}" in out
    assert serves(client, 28020, WEB), "reconcile did not follow the new address"
    assert ps.run("status").returncode == 0
    ps.ok("unpublish", bid)


def test_watch_follows_a_restart_on_its_own(ps: Portscope, client: Client) -> None:
    bid = ps.binding_id(ps.ok("publish", WEB, "28030:80"))
    ps.check_docker_chains = False  # Docker changes its own chains while watch runs
    watcher = ps.popen("watch")
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()  # the first reconcile's summary: the watch is following events
        assert "binding(s)" in first, first
        assert serves(client, 28030, WEB)
        _move(ps, WEB)
        assert serves(client, 28030, WEB), "watch did not reconcile after the restart"
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=30)
        ps.check_docker_chains = True
    assert watcher.returncode == 0, err
    assert f"moved {bid}" in out, out
    assert ps.run("status").returncode == 0
    ps.ok("unpublish", bid)


def test_concurrent_publishes_leave_whole_rules(ps: Portscope, client: Client) -> None:
    """Two processes publishing different ports, and two racing for one port: no duplicate, nothing partial."""
    procs = [ps.popen("publish", WEB, "28040:80"), ps.popen("publish", OTHER, "28041:80")]
    racing = [ps.popen("publish", WEB, "28042:80"), ps.popen("publish", OTHER, "28042:80")]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs + racing]
    assert [r[0] for r in results[:2]] == [0, 0], results
    assert sorted(r[0] for r in results[2:]) == [0, 2], results
    loser = next(r for r in results[2:] if r[0] == 2)
    assert "already published by portscope" in loser[2]
    rules = ours(ps.save())
    assert len(rules) == len(set(rules)), "duplicate rules"
    for port in (28040, 28041, 28042):
        assert sum(1 for r in rules if f"--dport {port} " in r and "DNAT" in r) == 1
    assert ps.run("status").returncode == 0, "state and kernel differ"
    assert serves(client, 28040, WEB) and serves(client, 28041, OTHER)
    for port in (28040, 28041, 28042):
        ps.ok("unpublish", str(port))


def test_a_removed_container_is_flagged_not_deleted(ps: Portscope, client: Client) -> None:
    run_web(ps.engine, "rec-gone")
    bid = ps.binding_id(ps.ok("publish", "rec-gone", "28050:80"))
    assert serves(client, 28050, "rec-gone")
    remove_containers(ps.engine, "rec-gone")
    out = ps.ok("reconcile")
    assert f"flagged {bid}" in out and "is gone" in out
    assert not [line for line in ours(ps.save()) if bid in line], "rules to a removed container remain"
    status = ps.run("status", "--json")
    assert status.returncode == 1
    (b,) = [b for b in json.loads(status.stdout)["bindings"] if b["id"] == bid]
    assert b["health"] == "orphaned"
    ps.ok("unpublish", bid)
    assert ps.run("status").returncode == 0
