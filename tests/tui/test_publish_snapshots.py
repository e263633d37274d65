"""The look of the publish form (both ways) and of `x` with recreate chosen, pinned.

pytest-textual-snapshot; SVG in __snapshots__/. Update: --snapshot-update.
"""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input

from portscope.core.snapshot import read_capture
from portscope.tui.publish_support import PublishRequest
from tests.tui.conftest import SAMPLE, SIZE, wait_until
from tests.tui.publish_helpers import (
    WEB,
    Changes,
    app_with,
    choose,
    open_confirm,
    open_form,
    previewed,
    type_into,
    web_id,
)
from tests.tui.test_recreate_forms import choose_way, fill_web_8081, planned_shown


def test_publish_form(snap_compare) -> None:
    """From Containers: web, all addresses (the warning), 8081 → 80/tcp, a reason, the dry run's rules."""
    snap = read_capture(str(SAMPLE))

    async def run_before(pilot: Pilot) -> None:
        await open_form(pilot, "2")
        await choose(pilot, "container", web_id(snap))
        await choose(pilot, "host-ip", "0.0.0.0")
        await type_into(pilot, "host-port", "8081")
        await type_into(pilot, "container-port", "80")
        await type_into(pilot, "reason", "demo")
        await previewed(pilot, PublishRequest("web", "0.0.0.0", 8081, 80, "tcp", "demo"))
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(app_with(Changes(snap)), terminal_size=SIZE, run_before=run_before)


def test_publish_form_recreate(snap_compare) -> None:
    """The same port the Docker way: recreate with it, the plan (a dry run) shown before confirming."""
    snap = read_capture(str(SAMPLE))

    async def run_before(pilot: Pilot) -> None:
        await open_form(pilot, "2")
        await fill_web_8081(pilot)
        await choose_way(pilot, "way-recreate")
        await planned_shown(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(app_with(Changes(snap)), terminal_size=SIZE, run_before=run_before)


def test_x_recreate_without_a_docker_port(snap_compare) -> None:
    """`x` on web's 8080 (Docker's): block or recreate without it, the recreate chosen and its plan shown."""
    snap = read_capture(str(SAMPLE))

    async def run_before(pilot: Pilot) -> None:
        screen = await open_confirm(pilot, WEB)
        await wait_until(pilot, lambda: "recreate" in screen.succeeded)
        await pilot.click("#close-recreate")
        await pilot.pause()

    assert snap_compare(app_with(Changes(snap)), terminal_size=SIZE, run_before=run_before)
