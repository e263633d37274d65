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


@pytest.mark.setups("nft-noproxy")  # once, beside the iptables-nft engine
def test_native_nftables_changes_are_followed(engine: Engine) -> None:
    """A native nftables table with a DNAT: added, its rule deleted, the table deleted."""
    script = (
        f"table ip {NATIVE_TABLE} {{\n"
        " chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
        '  tcp dport 18083 dnat to 172.17.0.251:80 comment "pst"\n }\n'
        "}\n"
    )
    with running_app(engine) as app:
        try:
            engine.ns.run(["nft", "-f", "-"], input=script)
            check(app, "a native nftables table with a DNAT added")
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
