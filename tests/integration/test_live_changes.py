"""The live TUI follows changes without a timer: rules (iptables-nft, iptables-legacy, native nftables),
containers and listeners change under a running app, and each time its model comes to equal a fresh
full read of the host.

The app runs in the engine's namespace (tests/integration/live_app_driver.py) with `refresh=0`, so
only change notifications and the change checks can bring it up to date.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.sandbox.engine import IMAGE, REPO_ROOT, Engine
from tests.sandbox.line_driver import LineDriver

pytestmark = pytest.mark.setups("nft-noproxy", "legacy-proxy")

NATIVE_TABLE = "pstchanges"


def start_driver(engine: Engine) -> LineDriver:
    """The app in the engine's namespace, ready (its first read shown)."""
    env = engine.env()
    env["PYTHONPATH"] = str(REPO_ROOT)
    driver = LineDriver(
        engine.ns.argv([sys.executable, "-m", "tests.integration.live_app_driver"]), cwd=REPO_ROOT, env=env
    )
    ready = driver.answer()
    assert ready.startswith("ready"), ready or f"(driver ended, exit {driver.process.poll()})"
    return driver


@contextmanager
def running_app(engine: Engine) -> Iterator[LineDriver]:
    driver = start_driver(engine)
    try:
        yield driver
    finally:
        driver.close()


def check(driver: LineDriver, what: str) -> None:
    """The app shows what a fresh full read shows (`synced N`), else the test fails with the difference."""
    answer = driver.ask("sync")
    assert answer.startswith("synced"), f"after {what}: {answer}"


def test_iptables_changes_are_followed(engine: Engine) -> None:
    """Rules added, replaced in place and deleted with the set-up's iptables flavour."""
    rule = ["-p", "tcp", "--dport", "18081", "-j", "DNAT", "--to-destination", "172.17.0.250:80"]
    same_size = ["-p", "tcp", "--dport", "18082", "-j", "DNAT", "--to-destination", "172.17.0.250:80"]
    with running_app(engine) as app:
        try:
            engine.iptables("-t", "nat", "-I", "DOCKER", "1", *rule)
            check(app, "a DNAT added")
            engine.iptables("-t", "nat", "-R", "DOCKER", "1", *same_size)
            check(app, "a DNAT replaced by one of the same size")
            engine.iptables("-t", "nat", "-D", "DOCKER", "1")
            check(app, "a DNAT deleted")
        finally:
            engine.iptables("-t", "nat", "-D", "DOCKER", *rule, check=False)
            engine.iptables("-t", "nat", "-D", "DOCKER", *same_size, check=False)


def test_changes_in_a_chain_jumped_to_are_followed(engine: Engine) -> None:
    """A chain of DNATs jumped to from the top of DOCKER: the jump inserted before Docker's own rules, a DNAT
    added to the jumped-to chain alone (the chain that jumps is unchanged), then the jump deleted."""
    chain = "PSTJUMP"
    first = ["-p", "tcp", "--dport", "18086", "-j", "DNAT", "--to-destination", "172.17.0.252:80"]
    second = ["-p", "tcp", "--dport", "18087", "-j", "DNAT", "--to-destination", "172.17.0.253:80"]
    with running_app(engine) as app:
        try:
            engine.iptables("-t", "nat", "-N", chain)
            engine.iptables("-t", "nat", "-A", chain, *first)
            engine.iptables("-t", "nat", "-I", "DOCKER", "1", "-j", chain)
            check(app, "a jump to a chain with a DNAT inserted at the top of DOCKER")
            engine.iptables("-t", "nat", "-I", chain, "1", *second)
            check(app, "a DNAT inserted in the jumped-to chain")
            engine.iptables("-t", "nat", "-D", "DOCKER", "-j", chain)
            check(app, "the jump deleted")
        finally:
            engine.iptables("-t", "nat", "-D", "DOCKER", "-j", chain, check=False)
            engine.iptables("-t", "nat", "-F", chain, check=False)
            engine.iptables("-t", "nat", "-X", chain, check=False)


@pytest.mark.setups("nft-noproxy")  # once, beside the iptables-nft engine
def test_native_nftables_changes_are_followed(engine: Engine) -> None:
    """A native nftables table with a DNAT and a jump to a chain of DNATs: added, a DNAT inserted in the
    jumped-to chain, a RETURN inserted before the others, its base chain flushed, the table deleted."""
    script = (
        f"table ip {NATIVE_TABLE} {{\n"
        " chain ports {\n  tcp dport 18088 dnat to 172.17.0.254:80\n }\n"
        " chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
        '  tcp dport 18083 dnat to 172.17.0.251:80 comment "pst"\n  jump ports\n }\n'
        "}\n"
    )
    with running_app(engine) as app:
        try:
            engine.ns.run(["nft", "-f", "-"], input=script)
            check(app, "a native nftables table with a DNAT and a jump to a chain with another added")
            engine.ns.run(["nft", "insert", "rule", "ip", NATIVE_TABLE, "ports", "tcp", "dport", "18089", "dnat",
                           "to", "172.17.0.254:80"])  # fmt: skip
            check(app, "a DNAT inserted in the jumped-to chain")
            engine.ns.run(["nft", "insert", "rule", "ip", NATIVE_TABLE, "prerouting", "tcp", "dport", "18088",
                           "return"])  # fmt: skip
            check(app, "a RETURN inserted before the others of the chain that jumps")
            engine.ns.run(["nft", "flush", "chain", "ip", NATIVE_TABLE, "prerouting"])
            check(app, "its rules flushed")
            engine.ns.run(["nft", "delete", "table", "ip", NATIVE_TABLE])
            check(app, "the table deleted")
        finally:
            engine.ns.run(["nft", "delete", "table", "ip", NATIVE_TABLE], check=False)


def test_container_and_listener_changes_are_followed(engine: Engine) -> None:
    """A container published, stopped and removed; a host listener opened and closed."""
    name = "pst-changes"
    with running_app(engine) as app:
        listener = None
        try:
            engine.run_container(name, "-p", "18084:80", IMAGE, "httpd", "-f", "-p", "80")
            check(app, "a container started with -p 18084:80")
            engine.docker("stop", "-t", "0", name)
            check(app, "the container stopped")
            engine.docker("rm", name)
            check(app, "the container removed")
            listener = subprocess.Popen(
                engine.ns.argv(["busybox", "nc", "-l", "-p", "18085"]),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            check(app, "a listener opened on 18085")
            listener.kill()
            listener.wait()
            listener = None
            check(app, "the listener closed")
        finally:
            if listener is not None:
                listener.kill()
                listener.wait()
            engine.docker("rm", "-f", name, check=False)
