"""Reading in a worker: refresh in place, pause, never overlapping reads, failures and a hanging read."""

from __future__ import annotations

import threading
from dataclasses import replace

from textual.widgets import TabbedContent

from portscope.core.errors import EngineError
from portscope.core.model import Chain, Snapshot
from portscope.tui.widgets.keyed_table import KeyedTable
from portscope.tui.widgets.status_line import StatusLine
from tests.tui.conftest import SIZE, live_app, loaded, notifications, wait_until


def _status(app) -> str:
    return str(app.query_one(StatusLine).render())


def _notices(app) -> list[tuple[str, str]]:
    return notifications(app)


def _without_cache(snap: Snapshot) -> Snapshot:
    """The sample after `cache` went away: its container and its rules are gone."""
    containers = [c for c in snap.containers if c.name != "cache"]
    tables = []
    for t in snap.tables:
        t = replace(t, chains=dict(t.chains))
        for name, chain in t.chains.items():
            rules = [r for r in chain.rules if "172.17.0.4" not in r.text]
            t.chains[name] = Chain(chain.name, chain.hook, chain.kind, chain.policy, chain.priority, parsed=rules)
        tables.append(t)
    return replace(snap, containers=containers, tables=tables, taken_at="2026-11-27T22:31:56+00:00")


class Loader:
    """Hands out snapshots in turn (the last one forever); counts reads and how many ran at once."""

    def __init__(self, *snaps: Snapshot | BaseException) -> None:
        self.items = list(snaps)
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.gate: threading.Event | None = None  # when set, reads after the first wait on it
        self.lock = threading.Lock()

    def __call__(self) -> Snapshot:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            n = self.calls
        try:
            if self.gate is not None and n > 1:
                self.gate.wait(timeout=30)
            item = self.items[min(n, len(self.items)) - 1]
            if isinstance(item, BaseException):
                raise item
            return item
        finally:
            with self.lock:
                self.running -= 1


async def test_refresh_updates_in_place_and_keeps_the_selection(sample, monkeypatch) -> None:
    def no_clear(self, columns: bool = False):
        raise AssertionError("a refresh must not clear the table")

    monkeypatch.setattr(KeyedTable, "clear", no_clear)
    load = Loader(sample, _without_cache(sample))
    app = live_app(load)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = app.view("ports").table
        await pilot.press("down", "down")  # 0.0.0.0:8080 (web), after 2222 and 5353
        chosen = table.selected_key
        assert chosen is not None and "8080" in chosen
        assert table.row_count == 7
        await pilot.press("r")
        await loaded(pilot, reads=2)
        assert table.row_count == 6
        assert not any("40000" in k for k in table.shown_keys)
        assert table.selected_key == chosen
        await pilot.press("2")
        assert app.view("containers").table.row_count == 6
        assert "22:31:56" in _status(app)


async def test_refresh_keeps_scroll_position(sample) -> None:
    load = Loader(sample, _without_cache(sample))
    app = live_app(load)
    async with app.run_test(size=(120, 16)) as pilot:  # a short screen, so the rules table scrolls
        await loaded(pilot)
        await pilot.press("d", "6", *["down"] * 18)
        table = app.view("rules").table
        await pilot.pause()
        chosen, offset = table.selected_key, table.cursor_row - table.scroll_y
        assert table.scroll_y > 0
        await pilot.press("r")
        await loaded(pilot, reads=2)
        assert table.row_count < 20  # rules above the cursor went away
        assert (table.selected_key, table.cursor_row - table.scroll_y) == (chosen, offset)


async def test_live_refresh_is_rearmed_after_each_read_and_never_overlaps(sample) -> None:
    load = Loader(sample)
    app = live_app(load, refresh=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.reads >= 4)
        assert load.most_at_once == 1
        assert "every 0.02 s" in _status(app)


async def test_pause_stops_and_resumes_live_refresh(sample) -> None:
    load = Loader(sample)
    app = live_app(load, refresh=30)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert app._next_read is not None
        await pilot.press("p")
        assert app.paused and app._next_read is None
        assert "live, paused" in _status(app)
        await pilot.press("p")
        await loaded(pilot, reads=2)
        assert not app.paused and app._next_read is not None
        assert load.calls == 2


async def test_a_failed_read_keeps_the_last_data_marked_stale(sample) -> None:
    load = Loader(sample, EngineError("Docker socket /var/run/docker.sock: connection refused (is dockerd running?)"))
    app = live_app(load)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        keys = app.view("ports").table.shown_keys
        await pilot.press("r")
        await loaded(pilot, reads=2)
        assert app.view("ports").table.shown_keys == keys
        assert app.stale and "connection refused" in app.stale
        assert "STALE" in _status(app)
        assert app.screen.has_class("-stale")
        assert ("error", "Read failed: Docker socket /var/run/docker.sock: connection refused (is dockerd running?)"
                " — showing the last good data; r tries again") in _notices(app)  # fmt: skip
        load.items.append(sample)  # the next read succeeds: no longer stale
        await pilot.press("r")
        await loaded(pilot, reads=3)
        assert app.stale is None and "STALE" not in _status(app)


async def test_a_first_read_without_permission_says_so() -> None:
    load = Loader(PermissionError(13, "Permission denied", "/var/run/docker.sock"))
    app = live_app(load)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert app.model is None
        assert "permission denied (/var/run/docker.sock)" in (app.stale or "")
        assert any("no data yet" in text for _, text in _notices(app))
        assert "no data yet" in _status(app) and "STALE" in _status(app)


async def test_a_hanging_read_leaves_the_ui_responsive(sample) -> None:
    load = Loader(sample)
    load.gate = threading.Event()
    app = live_app(load, read_timeout=0.05)
    async with app.run_test(size=SIZE) as pilot:
        try:
            await loaded(pilot)
            await pilot.press("r")
            assert app.reading
            await pilot.press("3")  # the worker is blocked; keys still work
            assert app.query_one(TabbedContent).active == "conflicts"
            await pilot.press("down")
            assert app.view("conflicts").table.cursor_row == 1
            await wait_until(pilot, lambda: app.stale is not None)
            assert "Docker socket not answering" in app.stale
            assert any(sev == "warning" and text.startswith("Read timed out") for sev, text in _notices(app))
            assert "STALE" in _status(app)
            await pilot.press("r")  # a second read is not started while one hangs
            assert load.calls == 2
            assert app.view("ports").table.row_count == 7  # last good data kept
        finally:
            load.gate.set()
        await loaded(pilot, reads=2)
        assert app.stale is None


async def test_engine_unreachable_is_a_notice(sample) -> None:
    from portscope.core.model import EngineInfo

    down = replace(
        sample, engine=EngineInfo(reachable=False, reason="Docker did not answer within 5 s (socket hangs?)")
    )
    app = live_app(Loader(down))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert ("warning", "No Docker: Docker did not answer within 5 s (socket hangs?)") in _notices(app)
        assert "no Docker" in _status(app)
