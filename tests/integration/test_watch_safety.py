"""`watch` never removes a binding's rules because the state vanished (issue 11, item 3).

With `portscope watch` running on a real engine, the state directory (or just state.json) is removed
and a container is started: the reconcile that event causes fails with one line, the rules stay and
traffic still reaches the container; nothing re-creates an empty state. Once the state is back, the
next event reconciles as usual.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root_tools
from tests.integration.test_publish_harness import (
    Portscope,
    next_line,
    next_summary,
    ours,
    remove_containers,
    run_web,
    serves,
    session,
    stop_watcher,
)
from tests.sandbox.client import Client
from tests.sandbox.engine import IMAGE, TOOLS, Engine

pytestmark = pytest.mark.integration

WEB, POKE = "ws-web", "ws-poke"


@pytest.fixture(scope="module")
def ps(engine: Engine) -> Iterator[Portscope]:
    need_root_tools(*TOOLS)
    with session(engine, WEB, POKE) as ps:
        run_web(engine, WEB)
        yield ps


@pytest.mark.parametrize("removed", ["directory", "state.json"])
def test_a_vanished_state_keeps_the_rules(ps: Portscope, client: Client, removed: str) -> None:
    bid = ps.binding_id(ps.ok("publish", WEB, "28060:80"))
    assert serves(client, 28060, WEB)
    rules_before = ours(ps.save())
    folder = Path(ps.state_dir)
    saved = (folder / "state.json").read_bytes()
    ps.check_docker_chains = False  # Docker changes its own chains when the poke container starts
    watcher = ps.popen("watch")
    try:
        assert "binding(s)" in next_summary(watcher)  # the first reconcile: the watch follows events
        if removed == "directory":
            shutil.rmtree(folder)
        else:
            (folder / "state.json").unlink()
        ps.engine.run_container(POKE, IMAGE, "sleep", "3600")  # a start event: watch reconciles
        line = next_line(watcher, "reconcile failed", stderr=True)  # notes and warnings are skipped
        assert line.startswith("portscope: reconcile failed: ") and "is missing: restore it" in line, line
        assert ours(ps.save()) == rules_before, "watch changed portscope's rules after the state vanished"
        assert serves(client, 28060, WEB), "the binding stopped forwarding"
        if removed == "directory":
            assert not folder.exists(), "watch re-created the state directory"
        else:
            assert not (folder / "state.json").exists(), "watch wrote a new (empty) state"
        folder.mkdir(mode=0o700, exist_ok=True)
        (folder / "state.json").write_bytes(saved)
        (folder / "state.json").chmod(0o600)
        ps.engine.docker("restart", "-t", "0", POKE)  # die + start: watch reconciles from the restored state
        assert "binding(s)" in next_summary(watcher), "no reconcile after the state came back"
        _, err = stop_watcher(watcher)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        remove_containers(ps.engine, POKE)
        ps.check_docker_chains = True
    assert "reconcile failed" not in err, err
    assert ours(ps.save()) == rules_before
    assert serves(client, 28060, WEB)
    assert ps.run("status").returncode == 0
    ps.ok("unpublish", bid)
