"""Shared pytest set-up: markers, the skip-or-fail rule for root-only tests, and the sandbox fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.client import Client, paired_client
from tests.sandbox.engine import SETUPS, TOOLS, Engine, ensure_image, start_engine, stop_engine

REQUIRE_ENV = "PORTSCOPE_REQUIRE_INTEGRATION"
INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs root and real tools; runs dockerd in private network namespaces"
    )
    config.addinivalue_line(
        "markers", "setups(*ids): run only on these engine set-ups (the test does not depend on the backend)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries the `integration` marker; a test marked `setups(...)` is
    collected only for those engine set-ups (deselected, not skipped, for the others)."""
    kept, dropped = [], []
    for item in items:
        if INTEGRATION_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
        marker = item.get_closest_marker("setups")
        callspec = getattr(item, "callspec", None)
        setup = callspec.params.get("engine") if callspec is not None else None
        (dropped if marker and setup is not None and setup.id not in marker.args else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def integration_required() -> bool:
    """True when a missing prerequisite must fail the run (CI) rather than skip it."""
    return os.environ.get(REQUIRE_ENV) == "1"


def need_root_tools(*binaries: str) -> None:
    """Skip unless running as root with every binary present; under PORTSCOPE_REQUIRE_INTEGRATION=1, fail instead."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    missing = [b for b in binaries if not (os.access(b, os.X_OK) if os.path.isabs(b) else shutil.which(b))]
    if missing:
        problems.append("missing " + ", ".join(missing))
    if not problems:
        return
    message = "integration prerequisites: " + "; ".join(problems)
    if integration_required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", params=SETUPS, ids=[s.id for s in SETUPS])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A running sandboxed dockerd with the busybox image, one set-up at a time (torn down before the next)."""
    need_root_tools(*TOOLS)
    eng = start_engine(request.param)
    request.addfinalizer(lambda: stop_engine(eng))
    ensure_image(eng)
    yield eng


@pytest.fixture(scope="session")
def client(engine: Engine) -> Iterator[Client]:
    """A client namespace joined to the engine's by a veth (engine 10.203.0.1, client 10.203.0.2)."""
    with paired_client(engine.ns) as cli:
        yield cli
