"""portscope owns exactly what it created, and writes only on the engine's backend (issue 11, items 2, 5 and 8).

In each Docker set-up: foreign chains with portscope-looking names (`PORTSCOPE-MINE` jumped from INPUT,
a nat `PORTSCOPEX`) stay byte-identical through publish, status, apply, reconcile and unpublish while
traffic flows; a foreign chain with one of portscope's own names is refused (exit 6), as is
`--backend nftables` on an iptables Docker host; route_localnet and an iptables-nft table portscope
created are put back when the last loopback binding goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import (
    Portscope,
    normalized,
    ours,
    refused,
    remove_containers,
    run_web,
    serves,
)
from tests.sandbox.client import Client, tcp_get
from tests.sandbox.engine import TOOLS, Engine, wait_for

pytestmark = pytest.mark.integration

WEB = "own-web"
FOREIGN = ("PORTSCOPE-MINE", "PORTSCOPEX")


@pytest.fixture(scope="module")
def ps(engine: Engine) -> Iterator[Portscope]:
    need_root_tools(*TOOLS, "nft", "sysctl")
    ps = Portscope(engine)
    ipt = engine.setup.iptables_binary(4)
    try:
        run_web(engine, WEB)
        for argv in (["-N", "PORTSCOPE-MINE"], ["-A", "PORTSCOPE-MINE", "-s", "10.9.9.9", "-j", "DROP"],
                     ["-A", "INPUT", "-j", "PORTSCOPE-MINE"], ["-t", "nat", "-N", "PORTSCOPEX"],
                     ["-t", "nat", "-A", "PORTSCOPEX", "-s", "10.9.9.8", "-j", "RETURN"]):  # fmt: skip
            engine.ns.run([ipt, *argv])
        yield ps
    finally:
        ps.clean_up()
        for argv in (["-D", "INPUT", "-j", "PORTSCOPE-MINE"], ["-F", "PORTSCOPE-MINE"], ["-X", "PORTSCOPE-MINE"],
                     ["-t", "nat", "-F", "PORTSCOPEX"], ["-t", "nat", "-X", "PORTSCOPEX"]):  # fmt: skip
            engine.ns.run([ipt, *argv], check=False)
        remove_containers(engine, WEB)


def foreign(ps: Portscope) -> list[str]:
    """Every line of the foreign look-alikes (their chains, rules and the INPUT jump), both families."""
    lines = []
    for family in (4, 6):
        lines += [line for line in normalized(ps.engine.iptables_save(family)).splitlines()
                  if any(name in line for name in FOREIGN)]  # fmt: skip
    return lines


def stored(ps: Portscope) -> str | None:
    path = Path(ps.state_dir) / "state.json"
    return path.read_text() if path.exists() else None


def test_foreign_look_alikes_are_left_alone_and_reported(ps: Portscope, client: Client) -> None:
    before = foreign(ps)
    assert len(before) == 5, before  # two declarations, two rules and the INPUT jump
    published = ps.run("publish", WEB, "9400:80")
    assert published.returncode == 0, published.stderr
    for name in FOREIGN:
        assert f"chain {name} is not portscope's" in published.stderr, published.stderr
    assert foreign(ps) == before
    assert serves(client, 9400, WEB)
    for command in (("status",), ("apply",), ("reconcile",)):
        proc = ps.run(*command)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        assert foreign(ps) == before, command
    assert serves(client, 9400, WEB)
    ps.ok("unpublish", "9400")
    assert refused(client, 9400)
    assert foreign(ps) == before
    assert not [line for line in ours(ps.save()) if "portscope:" in line], "portscope's rules are left behind"


def test_a_foreign_chain_with_portscopes_own_name_is_refused(ps: Portscope) -> None:
    ipt = ps.engine.setup.iptables_binary(4)
    ps.engine.ns.run([ipt, "-N", "PORTSCOPE-FORWARD"])
    ps.engine.ns.run([ipt, "-A", "PORTSCOPE-FORWARD", "-s", "10.9.9.7", "-j", "DROP"])
    try:
        rules, state = normalized(ps.save()), stored(ps)
        proc = ps.run("publish", WEB, "9401:80")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 6, proc.stderr
        assert len(lines) == 1 and "PORTSCOPE-FORWARD exists but portscope did not create it" in lines[0], lines
        assert normalized(ps.save()) == rules and stored(ps) == state
    finally:
        ps.engine.ns.run([ipt, "-F", "PORTSCOPE-FORWARD"])
        ps.engine.ns.run([ipt, "-X", "PORTSCOPE-FORWARD"])


def test_backend_nftables_on_an_iptables_docker_host_is_refused(ps: Portscope, client: Client) -> None:
    rules, state, tables = normalized(ps.save()), stored(ps), ps.engine.ns.run(["nft", "list", "tables"]).stdout
    proc = ps.run("publish", WEB, "9402:80", "--backend", "nftables")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 6 and len(lines) == 1 and "--backend auto" in lines[0], proc.stderr
    assert normalized(ps.save()) == rules and stored(ps) == state
    assert ps.engine.ns.run(["nft", "list", "tables"]).stdout == tables, "an nftables table was created"
    bid = ps.binding_id(ps.ok("publish", WEB, "9402:80"))
    assert serves(client, 9402, WEB), "auto after the refused choice does not work"
    doc = json.loads(ps.ok("status", "--json"))
    assert doc["backend"] == f"iptables-{ps.engine.setup.backend}" and doc["drift"] == []
    ps.ok("unpublish", bid)


def test_route_localnet_and_a_created_raw_table_are_put_back(ps: Portscope) -> None:
    ns = ps.engine.ns
    ns.run(["sysctl", "-w", "net.ipv4.conf.docker0.route_localnet=0"])
    nft_raw = ps.engine.setup.backend == "nft"
    if nft_raw:
        ns.run(["nft", "delete", "table", "ip", "raw"], check=False)  # Docker 20.10 does not use it
    bid = ps.binding_id(ps.ok("publish", WEB, "127.0.0.1:19400:80"))
    local = wait_for(lambda: tcp_get(ns, "127.0.0.1", 19400, timeout=2), timeout=20)
    assert local is not None and f"hello from {WEB}" in local
    assert ns.run(["sysctl", "-n", "net.ipv4.conf.docker0.route_localnet"]).stdout.strip() == "1"
    out = ps.run("unpublish", bid)
    assert out.returncode == 0, out.stderr
    assert ns.run(["sysctl", "-n", "net.ipv4.conf.docker0.route_localnet"]).stdout.strip() == "0"
    if nft_raw:
        assert ns.run(["nft", "list", "table", "ip", "raw"], check=False).returncode != 0, "the raw table is left"
    assert "localnet" not in json.loads(stored(ps) or "{}")
