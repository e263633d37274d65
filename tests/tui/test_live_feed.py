"""Change-driven refresh: the app reads only what its feed says changed, and rebuilds nothing when a read
finds the host as shown. The feed here hands out captured snapshots (the app's logic is under test;
core.changes itself is tested against the kernel in tests/integration/test_change_sources.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace

from portscope.core.model import Snapshot
from portscope.tui.widgets.status_line import StatusLine
from tests.tui.conftest import SIZE, live_app, loaded


class CaptureFeed:
    """Snapshots in turn; records what each read was asked for; `changed()` plays the watcher."""

    def __init__(self, *snaps: Snapshot) -> None:
        self.snaps = list(snaps)
        self.asked: list[frozenset[str]] = []
        self.notify: Callable[[frozenset[str]], None] | None = None
        self.stopped = False

    def read(self, changed: Collection[str] = frozenset({"rules", "containers", "sockets"})) -> Snapshot:
        self.asked.append(frozenset(changed))
        return self.snaps[min(len(self.asked), len(self.snaps)) - 1]

    def watch(self, notify: Callable[[frozenset[str]], None]) -> list[str]:
        self.notify = notify
        return ["nft not found: nf_tables rule changes are seen by the periodic full read only"]

    def stop(self) -> None:
        self.stopped = True


def _without_cache_container(snap: Snapshot) -> Snapshot:
    return replace(snap, containers=[c for c in snap.containers if c.name != "cache"], taken_at="2026-11-27T22:31:56Z")


async def test_a_change_reads_only_that_part_and_shows_it(sample) -> None:
    feed = CaptureFeed(sample, _without_cache_container(sample))
    app = live_app(feed.read, feed=feed)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert "on change" in str(app.query_one(StatusLine).render())
        assert app.model is not None and app.model.count("containers") == 7
        app.read_changed(frozenset({"containers"}))
        await loaded(pilot, reads=2)
        assert feed.asked[-1] == {"containers"}
        await pilot.press("2")
        assert app.view("containers").table.row_count == 6
    assert feed.stopped


async def test_a_read_that_finds_nothing_new_rebuilds_nothing(sample) -> None:
    feed = CaptureFeed(sample, replace(sample, taken_at="2026-11-27T22:31:56Z"))
    app = live_app(feed.read, feed=feed)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        shown = app.model
        app.read_changed(frozenset({"sockets"}))
        await loaded(pilot, reads=2)
        assert app.model is shown
        assert shown is not None and shown.snap.taken_at == "2026-11-27T22:31:56Z"


async def test_sources_that_cannot_be_followed_are_said(sample) -> None:
    feed = CaptureFeed(sample)
    app = live_app(feed.read, feed=feed)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert app.watching == ["nft not found: nf_tables rule changes are seen by the periodic full read only"]
        assert any("nft not found" in str(n.message) for n in app._notifications)
