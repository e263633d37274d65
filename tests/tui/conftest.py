"""Fixtures for the TUI tests: the shipped sample capture and apps over it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Select

from portscope.core.model import Snapshot
from portscope.core.rules.iptables_text import parse_iptables_text
from portscope.core.snapshot import read_capture
from portscope.tui.app import PortscopeApp


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests here in a fresh event loop (no asyncio plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.json"
SIZE = (120, 36)


@pytest.fixture
def sample() -> Snapshot:
    return read_capture(str(SAMPLE))


def capture_app(**kwargs) -> PortscopeApp:
    """The app as `portscope --snapshot examples/sample.json` opens it."""
    return PortscopeApp(partial(read_capture, str(SAMPLE)), refresh=0, source=str(SAMPLE), **kwargs)


def live_app(load: Callable[[], Snapshot], **kwargs) -> PortscopeApp:
    """The app in live mode over an injected loader."""
    kwargs.setdefault("refresh", 0)
    return PortscopeApp(load, **kwargs)


def non_root(snap: Snapshot) -> Snapshot:
    """The sample as a non-root read sees it: no rules, a warning."""
    return replace(
        snap,
        host=replace(snap.host, is_root=False),
        tables=[],
        sources=[],
        backends=[replace(b, read=False, rules=0, reason="permission denied (run as root)") for b in snap.backends],
        warnings=["not root: firewall rules and other users' processes are hidden (run with sudo)"],
    )


def limited_reach(snap: Snapshot) -> Snapshot:
    """The sample with Docker's userland-proxy rules (`-i docker0 -j RETURN`...) and a rule portscope cannot model.

    Its Docker DNATs are then reached only from outside the bridges, and 40000's may be taken
    first by a `-m statistic` RETURN: an uncertain reach.
    """
    nat = next(t for t in snap.tables if t.name == "nat" and t.family == "ipv4")
    lines = ["*nat", *(f":{c.name} {'ACCEPT' if c.hook else '-'} [0:0]" for c in nat.chains.values())]
    for chain in nat.chains.values():
        if chain.name == "PREROUTING":
            lines.append("-A PREROUTING -p tcp -m tcp --dport 40000 -m statistic --mode random "
                         "--probability 0.5 -j RETURN")  # fmt: skip
        if chain.name == "DOCKER":
            lines += ["-A DOCKER -i docker0 -j RETURN", "-A DOCKER -i br-6debdcee2df8 -j RETURN"]
        lines += [r.text for r in chain.rules]
    backend = nat.chains["PREROUTING"].rules[0].backend
    tables = parse_iptables_text("\n".join([*lines, "COMMIT", ""]), backend=backend, family="ipv4")
    return replace(snap, tables=[t for t in snap.tables if t is not nat] + tables)


async def wait_until(pilot: Pilot, condition: Callable[[], bool], tries: int = 400) -> None:
    """Let the app run until `condition()` holds (a bounded number of short pauses)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("condition never held")


async def loaded(pilot: Pilot, reads: int = 1) -> None:
    """Wait until the app has finished `reads` reads and processed their messages."""
    app = pilot.app
    await wait_until(pilot, lambda: app.reads >= reads and not app.reading)  # type: ignore[attr-defined]
    await pilot.pause()
    await pilot.pause()


# The two Textual internals the tests read (pinned by test_textual_internals.py): Textual has no public
# accessor for the notifications an app shows, nor for a Select's options.


def notifications(app: App) -> list[tuple[str, str]]:
    """(severity, "title: message") of every notification the app shows."""
    return [(n.severity, f"{n.title}: {n.message}") for n in app._notifications]


def select_options(select: Select) -> list[tuple[str, object]]:
    """A Select's options as (label text, value), in order (the blank one first when it has one)."""
    return [(str(label), value) for label, value in select._options]
