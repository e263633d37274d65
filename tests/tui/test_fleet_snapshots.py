"""The look of the fleet's views, pinned (pytest-textual-snapshot; SVGs in __snapshots__/).

Update: --snapshot-update."""

from __future__ import annotations

from textual.pilot import Pilot

from tests.tui.conftest import SIZE, loaded
from tests.tui.fleet_helpers import capture_fleet_app, write_fleet_capture


def _keys(*keys: str):
    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        await pilot.press(*keys)

    return run_before


def test_hosts_view(snap_compare, tmp_path) -> None:
    """Three hosts, one unreachable (selected: its error in the detail pane)."""
    app = capture_fleet_app(write_fleet_capture(tmp_path / "fleet.json"))
    assert snap_compare(app, terminal_size=SIZE, run_before=_keys("7", "down", "down"))


def test_fleet_ports(snap_compare, tmp_path) -> None:
    """Every host's bindings with a HOST column; the published address is PUBLISHED."""
    app = capture_fleet_app(write_fleet_capture(tmp_path / "fleet.json"))
    assert snap_compare(app, terminal_size=SIZE, run_before=_keys("1"))
