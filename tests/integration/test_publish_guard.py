"""A binding never forwards to the wrong container, with or without a watcher (issue 11, item 4).

Stop a published container and start others until one takes its address (Docker 20.10 gives it the same
MAC too): the binding's old rules, still in the kernel, must not carry a byte to the newcomer. The guard
(`table bridge portscope` and the mark on portscope's flows) drops them, since the newcomer sits behind
another veth; on both iptables backends, and through the native nftables writer. With `portscope watch`
running, a container that comes back (a new veth, maybe a new address) is followed and served again.
Unpublishing the last binding removes the guard; someone else's bridge tables are left alone (and one
that holds portscope's table name is refused, nothing changed).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import (
    Portscope,
    container_ip,
    normalized,
    ours,
    remove_containers,
    run_web,
    serves,
    session,
)
from tests.sandbox.client import Client, tcp_talk
from tests.sandbox.engine import IMAGE, REPO_ROOT, TOOLS, Engine, wait_for

pytestmark = pytest.mark.integration

WEB = "guard-web"
FILLERS = tuple(f"guard-new-{i}" for i in range(8))
PORT = 9400
#: A listener on port 80 that appends every byte it receives to /got (busybox nc, one connection at a time).
LISTEN = "touch /got; while true; do nc -l -p 80 >> /got; done"
FOREIGN = (
    "table bridge portscope-other {\n"
    "\tchain output {\n"
    "\t\ttype filter hook output priority filter; policy accept;\n"
    '\t\tmeta mark 0x00000007 counter packets 0 bytes 0 comment "someone else\'s"\n'
    "\t}\n"
    "}\n"
)


@pytest.fixture(scope="module")
def ps(engine: Engine) -> Iterator[Portscope]:
    need_root_tools(*TOOLS, "nft")
    with session(engine, WEB, *FILLERS) as ps:
        yield ps


@pytest.fixture
def web(ps: Portscope) -> Iterator[str]:
    """A fresh `web` container; every binding and container of the test is removed afterwards."""
    engine = ps.engine
    ip = run_web(engine, WEB)
    try:
        yield ip
    finally:
        for binding in ps.api(_IDS).stdout.split():
            ps.run("unpublish", binding)
        remove_containers(engine, WEB, *FILLERS)


_IDS = "from portscope.core.publish import state\nprint(' '.join(b.id for b in state.load(state.state_dir()).bindings))"


def bridge_table(engine: Engine) -> str | None:
    proc = engine.ns.run(["nft", "list", "table", "bridge", "portscope"], check=False)
    return proc.stdout if proc.returncode == 0 else None


def take_address(engine: Engine, address: str) -> str:
    """Start listeners until one gets `address`; returns its name (the others keep running, on other addresses)."""
    for name in FILLERS:
        engine.run_container(name, IMAGE, "sh", "-c", LISTEN)
        if container_ip(engine, name) == address:
            return name
    raise AssertionError(f"no container took {address} in {len(FILLERS)} starts")


def nft_ruleset(engine: Engine) -> str:
    """`nft list ruleset` without counters (iptables-nft's rules count packets)."""
    return re.sub(r"counter packets \d+ bytes \d+", "counter", engine.ns.run(["nft", "list", "ruleset"]).stdout)


def received(engine: Engine, name: str) -> str:
    return engine.docker("exec", name, "cat", "/got").stdout


def test_a_stopped_containers_binding_never_reaches_the_newcomer_on_its_address(
    ps: Portscope, web: str, client: Client
) -> None:
    engine = ps.engine
    out = ps.ok("publish", WEB, f"{PORT}:80")
    assert serves(client, PORT, WEB)
    table = bridge_table(engine)
    assert table is not None and ps.binding_id(out) in table, table

    engine.docker("stop", "-t", "0", WEB)
    newcomer = take_address(engine, web)
    # The binding's rules are still in the kernel (no watcher, no reconcile), pointing at web's old address.
    assert any(f"{web}:80" in line for line in ours(ps.save())), ours(ps.save())
    assert client.tcp_talk(client.engine_ip, PORT, "through-the-binding\n", timeout=2) is None
    # The listener works: a direct connection from the host lands.
    assert wait_for(lambda: "direct" in (tcp_talk(engine.ns, web, 80, "direct\n", timeout=2) or "") or
                    "direct" in received(engine, newcomer), timeout=20)  # fmt: skip
    got = received(engine, newcomer)
    assert "direct" in got and "through-the-binding" not in got, got

    # Control: without the guard the same stale rules do carry the client's bytes to the newcomer.
    engine.ns.run(["nft", "delete", "table", "bridge", "portscope"])
    assert wait_for(lambda: client.tcp_talk(client.engine_ip, PORT, "unguarded\n", timeout=2) is not None or
                    "unguarded" in received(engine, newcomer), timeout=20)  # fmt: skip
    assert "unguarded" in received(engine, newcomer)


def test_watch_follows_the_container_to_its_new_veth_and_address(ps: Portscope, web: str, client: Client) -> None:
    engine = ps.engine
    ps.ok("publish", WEB, f"{PORT}:80")
    assert serves(client, PORT, WEB)
    before = bridge_table(engine)
    watcher = ps.popen("watch")
    try:
        engine.docker("restart", "-t", "0", WEB)
        assert serves(client, PORT, WEB), "watch did not re-target the binding after a restart"
        assert wait_for(lambda: bridge_table(engine) != before, timeout=20), "the guard still names the old veth"

        engine.docker("stop", "-t", "0", WEB)
        filler = take_address(engine, web)  # web's address is taken: it comes back on another one
        engine.docker("start", WEB)
        assert container_ip(engine, WEB) != web
        assert serves(client, PORT, WEB), "watch did not follow web to its new address"
        assert "hello" not in received(engine, filler)
    finally:
        watcher.send_signal(signal.SIGTERM)
        try:
            watcher.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 0


def test_unpublish_removes_the_guard_and_leaves_other_bridge_tables_alone(
    ps: Portscope, web: str, client: Client
) -> None:
    engine = ps.engine
    engine.ns.run(["nft", "-f", "-"], input=FOREIGN)
    try:
        foreign = engine.ns.run(["nft", "list", "table", "bridge", "portscope-other"]).stdout
        bid = ps.binding_id(ps.ok("publish", WEB, f"{PORT}:80"))
        assert bridge_table(engine) is not None
        assert "in sync with the kernel" in ps.ok("status")
        ps.ok("unpublish", bid)
        assert bridge_table(engine) is None, "unpublish of the last binding left the guard behind"
        assert engine.ns.run(["nft", "list", "table", "bridge", "portscope"], check=False).returncode != 0
        assert engine.ns.run(["nft", "list", "table", "bridge", "portscope-other"]).stdout == foreign
    finally:
        engine.ns.run(["nft", "delete", "table", "bridge", "portscope-other"], check=False)


def test_a_foreign_table_with_the_guards_name_is_refused_and_nothing_changes(
    ps: Portscope, web: str, client: Client
) -> None:
    engine = ps.engine
    engine.ns.run(["nft", "-f", "-"], input=FOREIGN.replace("portscope-other", "portscope"))
    try:
        before_nft = nft_ruleset(engine)
        before_ipt = ps.save()
        proc = ps.run("publish", WEB, f"{PORT}:80")
        assert proc.returncode == 6, proc.stderr
        assert "bridge portscope" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert nft_ruleset(engine) == before_nft
        assert ours(ps.save()) == ours(before_ipt)
        assert client.tcp_get(client.engine_ip, PORT, timeout=2) is None
    finally:
        engine.ns.run(["nft", "delete", "table", "bridge", "portscope"], check=False)


_NATIVE = """
import json, sys
from portscope.core.live import read_live
from portscope.core.publish.backend import Backend
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.owned import Owned
from portscope.core.publish.placement import place_all
from portscope.core.publish.world import World

name, created = sys.argv[1], json.loads(sys.argv[2])
snap = read_live()
world = World(backend=Backend("nftables"), snap=snap, owned=Owned(set(created)))
bindings = []
if name:
    (web,) = [c for c in snap.containers if c.name == name]
    bindings.append(StoredBinding(id="ps-0000abcd", kind="publish", host_ip="0.0.0.0", host_port=int(sys.argv[3]),
                                  protocol="tcp", container_port=80, container_id=web.id, container_name=name))
outcome = world.commit(place_all(bindings, snap).placed)
print(json.dumps({"created": sorted(world.owned.created), "warnings": outcome.warnings}))
"""
NATIVE_PORT = 9401


def native(ps: Portscope, name: str, created: list[str]) -> dict:
    """Write (or, with no name, remove) a binding to container `name` through the native nftables writer."""
    proc = ps.engine.ns.run(
        [sys.executable, "-c", _NATIVE, name, json.dumps(created), str(NATIVE_PORT)],
        check=False, cwd=REPO_ROOT, env=ps.env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_native_nftables_guard_in_the_same_transaction(ps: Portscope, web: str, client: Client) -> None:
    """Native nftables writer (driven through its API: Docker 20.10 itself is on iptables here, so the engine's
    FORWARD drop is opened for the test): the guard goes in the one `nft -f` batch, and works."""
    engine = ps.engine
    policy = engine.iptables("-S", "FORWARD").stdout.splitlines()[0].split()[-1]  # `-P FORWARD DROP`
    engine.iptables("-P", "FORWARD", "ACCEPT")
    created: list[str] = []
    try:
        done = native(ps, WEB, [])
        created = done["created"]
        assert done["warnings"] == [] and "table nftables bridge portscope" in created, done
        assert serves(client, NATIVE_PORT, WEB)
        assert "ps-0000abcd" in (bridge_table(engine) or "")
        engine.docker("stop", "-t", "0", WEB)
        newcomer = take_address(engine, web)
        assert client.tcp_talk(client.engine_ip, NATIVE_PORT, "through-the-binding\n", timeout=2) is None
        assert wait_for(lambda: "direct" in received(engine, newcomer) or
                        tcp_talk(engine.ns, web, 80, "direct\n", timeout=2) is not None, timeout=20)  # fmt: skip
        got = received(engine, newcomer)
        assert "direct" in got and "through-the-binding" not in got, got
        assert native(ps, "", created)["created"] == []
        assert bridge_table(engine) is None
        assert "portscope" not in engine.ns.run(["nft", "list", "tables"]).stdout
    finally:
        if created:
            native(ps, "", created)
        engine.iptables("-P", "FORWARD", policy)


_REFUSED_GUARD = """
import sys
from portscope.core.publish import state
from portscope.core.publish.errors import RuleRefusedError
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.placement import place_all
from portscope.core.publish.world import BRIDGE_BATCH, read_world

with state.locked() as folder:
    current = state.load(folder)
    world = read_world(None, "auto", current)
    (web,) = [c for c in world.snap.containers if c.name == sys.argv[1]]
    extra = StoredBinding(id="ps-0000beef", kind="publish", host_ip="0.0.0.0", host_port=int(sys.argv[2]),
                          protocol="tcp", container_port=80, container_id=web.id, container_name=web.name)
    try:
        world.commit(place_all([*current.bindings, extra], world.snap).placed, {BRIDGE_BATCH: [sys.argv[3]]})
    except RuleRefusedError as exc:
        print(exc)
    else:
        print("accepted")
"""
#: A nat statement in a filter chain of the bridge family: nft or the kernel refuses it.
BAD_BRIDGE_RULE = "add rule bridge portscope output tcp dport 1 dnat to 10.9.9.9"


def test_a_refused_guard_rolls_the_iptables_rules_back(ps: Portscope, web: str, client: Client) -> None:
    """On the iptables backends the guard is written after the iptables batches: its refusal undoes them."""
    engine = ps.engine
    ps.ok("publish", WEB, f"{PORT}:80")
    saves = {family: engine.iptables_save(family) for family in (4, 6)}
    ruleset = nft_ruleset(engine)
    proc = engine.ns.run(
        [sys.executable, "-c", _REFUSED_GUARD, WEB, str(PORT + 2), BAD_BRIDGE_RULE],
        check=False, cwd=REPO_ROOT, env=ps.env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "refused the guard rules" in proc.stdout and "nothing was changed" in proc.stdout, proc.stdout
    for family, before in saves.items():
        assert normalized(engine.iptables_save(family)) == normalized(before)
    assert nft_ruleset(engine) == ruleset
    assert client.tcp_get(client.engine_ip, PORT + 2, timeout=2) is None
    assert serves(client, PORT, WEB)
