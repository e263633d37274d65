"""The look of every view, pinned (pytest-textual-snapshot; SVGs in __snapshots__/). Update: --snapshot-update."""

from __future__ import annotations

from textual.pilot import Pilot

from portscope.core.errors import EngineError
from portscope.core.snapshot import read_capture
from portscope.tui.widgets.filter_bar import FilterBar
from tests.tui.conftest import SAMPLE, SIZE, capture_app, limited_reach, live_app, loaded, non_root
from tests.tui.test_refresh import Loader


def _view(n: int):
    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press(str(n))

    return run_before


def test_ports(snap_compare) -> None:
    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=_view(1))


def test_ports_reach_restricted_and_uncertain(snap_compare) -> None:
    """Docker's `-i docker0 -j RETURN` rules limit its DNATs; 40000 (selected) is uncertain."""
    snap = limited_reach(read_capture(str(SAMPLE)))

    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press(*["down"] * 6)

    assert snap_compare(live_app(lambda: snap), terminal_size=SIZE, run_before=run_before)


def test_containers(snap_compare) -> None:
    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=_view(2))


def test_conflicts(snap_compare) -> None:
    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=_view(3))


def test_ephemeral(snap_compare) -> None:
    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=_view(4))


def test_listeners(snap_compare) -> None:
    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=_view(5))


def test_rules_with_the_selected_bindings_rules_marked(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press("down", "down", "down", "g")  # 127.0.0.1:9000 (api)

    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=run_before)


def test_filtered_and_sorted(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press("slash", *"tcp 0.0.0.0")
        pilot.app.query_one(FilterBar).cursor_blink = False
        await pilot.press("enter", "s", "s", "S")

    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=run_before)


def test_finding_detail_screen(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press("3", "down", "enter")

    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(capture_app(), terminal_size=SIZE, run_before=run_before)


def test_not_root_banner(snap_compare) -> None:
    snap = non_root(read_capture(str(SAMPLE)))
    assert snap_compare(live_app(lambda: snap), terminal_size=SIZE, run_before=_view(1))


def test_stale_after_a_failed_read(snap_compare) -> None:
    load = Loader(read_capture(str(SAMPLE)), EngineError("Docker socket /var/run/docker.sock: connection refused"))

    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press("r")
        await loaded(pilot, reads=2)

    assert snap_compare(live_app(load), terminal_size=SIZE, run_before=run_before)
