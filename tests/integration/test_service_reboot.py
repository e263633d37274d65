"""A simulated reboot brings a binding back through what portscope's unit runs (issue 11).

On a real sandboxed engine: publish a binding and reach it from the client namespace; install the
unit into a temp root (`portscope service install --root`); then, as a reboot would, stop dockerd
(its containers stop with it), flush every table of the namespace's firewall and start dockerd again
(the container has `--restart always`). The binding no longer answers. The unit's ExecStartPre and
ExecStart lines, read from the generated unit file, are run in the namespace with the harness's
environment: `apply`, then `watch` in the background. Traffic flows again; the watch then follows the
container to a new address; SIGTERM stops it with exit 0.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.core import service
from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import (
    Portscope,
    container_ip,
    next_summary,
    ours,
    refused,
    run_web,
    serves,
    session,
    stop_watcher,
)
from tests.sandbox.client import Client
from tests.sandbox.daemon import terminate
from tests.sandbox.engine import IMAGE, REPO_ROOT, TOOLS, Engine, _dockerd_process, _launch, _wait_ready

pytestmark = pytest.mark.integration

WEB, FILLER, PORT = "svc-web", "svc-filler", 28090
TABLES = ("filter", "nat", "raw", "mangle")


@pytest.fixture(scope="module")
def ps(engine: Engine) -> Iterator[Portscope]:
    need_root_tools(*TOOLS, "systemctl", "nft")
    with session(engine, WEB, FILLER) as ps:
        yield ps


def reboot(engine: Engine) -> None:
    """Stop dockerd, empty the namespace's firewall (every nf_tables table; the legacy tables, their chains
    and policies), and start dockerd again with the same data root, as after a reboot."""
    dockerd = _dockerd_process(engine.root, engine.process)
    assert dockerd is not None, "dockerd is not running"
    notes: list[str] = []
    terminate([dockerd], grace=60, notes=notes, what="dockerd")
    assert notes == [], notes
    engine.ns.run(["nft", "flush", "ruleset"])
    if engine.setup.backend == "legacy":
        for family in (4, 6):
            for table in TABLES:
                engine.iptables("-t", table, "-F", family=family)
                engine.iptables("-t", table, "-X", family=family)
            for chain in ("INPUT", "FORWARD", "OUTPUT"):
                engine.iptables("-P", chain, "ACCEPT", family=family)
    assert ours(engine.iptables_save()) == [], "the flush left portscope's rules"
    _launch(engine)
    _wait_ready(engine, 90)


def unit_commands(root: Path) -> dict[str, list[str]]:
    """ExecStartPre and ExecStart of the unit `portscope service install --root ROOT` wrote."""
    proc = subprocess.run(
        [sys.executable, "-m", "portscope", "service", "install", "--root", str(root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    text = (root / service.UNIT_DIR / service.UNIT).read_text()
    runs = service.exec_lines(text)
    assert [argv[1:] for argv in runs.values()] == [["apply"], ["watch"]], runs
    return runs


def test_a_reboot_then_the_units_commands_bring_the_binding_back(ps: Portscope, client: Client, tmp_path: Path) -> None:
    engine = ps.engine
    run_web(engine, WEB, "--restart", "always")
    ps.ok("publish", WEB, f"{PORT}:80")
    assert serves(client, PORT, WEB)
    runs = unit_commands(tmp_path)

    ps.check_docker_chains = False  # the reboot re-creates Docker's chains
    reboot(engine)
    assert ours(ps.save()) == []
    assert refused(client, PORT), "the binding still answers after the flush"

    apply = engine.ns.run(runs["ExecStartPre"], check=False, cwd=REPO_ROOT, env=ps.env(), timeout=120)
    assert apply.returncode == 0, apply.stderr
    watcher = subprocess.Popen(
        engine.ns.argv(runs["ExecStart"]),
        cwd=REPO_ROOT,
        env=ps.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "binding(s)" in next_summary(watcher)
        assert serves(client, PORT, WEB), "no traffic after the unit's apply and watch"

        old_ip = container_ip(engine, WEB)
        engine.docker("stop", "-t", "0", WEB)
        engine.run_container(FILLER, IMAGE, "sleep", "3600")  # takes the stopped container's address
        engine.docker("start", WEB)
        assert container_ip(engine, WEB) != old_ip
        assert serves(client, PORT, WEB), "the watch did not follow the container to its new address"

        _, err = stop_watcher(watcher)
        assert "reconcile failed" not in err, err
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        ps.check_docker_chains = True
    assert ps.run("status").returncode == 0
