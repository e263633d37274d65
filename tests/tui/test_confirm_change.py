"""The unpublish/block/unblock confirmation (`x`), driven by Pilot on the sample.

The changes are injected (see `tests.tui.publish_helpers.Changes`): no root, no firewall, no engine.
"""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Button, Static

from portscope.core.errors import NotRootError
from portscope.core.publish.errors import InputError
from portscope.core.publish.model import StoredBinding, binding_id
from portscope.tui.publish_support import BindingChange
from portscope.tui.screens.confirm_change import ConfirmChange
from tests.tui.conftest import SIZE, loaded, wait_until
from tests.tui.publish_helpers import (
    BLOCK_RULE,
    HAND,
    WEB,
    Changes,
    CountingLoader,
    app_with,
    notices,
    open_confirm,
    preview,
)


async def test_block_a_docker_port_shows_the_rule_and_explains(sample) -> None:
    changes = Changes(sample)
    load = CountingLoader(sample)
    app = app_with(changes, loader=load)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, WEB)
        assert screen.change == BindingChange("block", WEB, "0.0.0.0:8080/tcp → web:80", "docker")
        assert f"+ {BLOCK_RULE}" in preview(app).replace("\n", "")
        explain = str(screen.query_one("#change-explain", Static).render()).replace("\n", " ")
        assert "Two ways to close it" in explain and "reversible" in explain and "restarts" in explain
        assert screen.query_one("#change-box").border_title == "Block 0.0.0.0:8080/tcp → web:80"
        assert changes.previews == [screen.change] and changes.applied == []
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmChange))
        await loaded(pilot, reads=2)
        assert changes.applied == [BindingChange("block", WEB, "0.0.0.0:8080/tcp → web:80", "docker")]
        assert load.calls == 2
        assert any(text.startswith("Block done: Blocked ps-0badc0de") for _, text in notices(app))


async def test_unblock_when_cores_state_holds_the_block_and_cancel_changes_nothing(sample) -> None:
    block = StoredBinding(id=binding_id("block", "0.0.0.0", 8080, "tcp"), kind="block", host_ip="0.0.0.0",
                          host_port=8080, protocol="tcp", container_port=80, container_name="web")  # fmt: skip
    changes = Changes(sample, [block])
    load = CountingLoader(sample)
    app = app_with(changes, loader=load)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, WEB)
        assert screen.change is not None and screen.change.action == "unblock" and screen.change.ref == block.id
        assert f"- {BLOCK_RULE}" in preview(app).replace("\n", "")
        assert str(screen.query_one("#confirm", Button).label) == "Unblock"
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmChange)
        assert changes.applied == [] and load.calls == 1


async def test_unpublish_portscopes_own_binding(sample) -> None:
    changes = Changes(sample, [StoredBinding(id="ps-12345678", kind="publish", host_ip="0.0.0.0", host_port=8080,
                                             protocol="tcp", container_port=80)])  # fmt: skip
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        app.model.bindings[WEB] = replace(app.model.bindings[WEB], owner="portscope")
        screen = await open_confirm(pilot, WEB)
        assert screen.change == BindingChange("unpublish", "ps-12345678", "0.0.0.0:8080/tcp → web:80", "portscope")
        assert "unpublishing removes exactly the rules below" in str(screen.query_one("#change-explain").render())
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmChange))
        assert changes.applied == [screen.change]


async def test_a_refused_dry_run_cannot_be_confirmed_and_errors_are_notifications(sample) -> None:
    changes = Changes(sample)
    changes.preview_error = InputError(f"{HAND} is carried by docker-proxy alone, not a DNAT rule: portscope "
                                       "cannot block it")  # fmt: skip
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, HAND)
        assert "✖ refused:" in preview(app) and "cannot block it" in preview(app)
        assert screen.query_one("#confirm", Button).disabled
        await pilot.press("y")
        await pilot.pause()
        assert changes.applied == [] and isinstance(app.screen, ConfirmChange)
        await pilot.press("escape")
    changes = Changes(sample)
    changes.apply_error = NotRootError("`portscope block` reads and changes the firewall: run it as root (sudo)")
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await open_confirm(pilot, WEB)
        await pilot.press("y")
        await wait_until(pilot, lambda: any(s == "error" for s, _ in notices(app)))
        await pilot.pause()
        assert ("error", f"Block failed: {changes.apply_error}") in notices(app)
        assert isinstance(app.screen, ConfirmChange) and len(changes.applied) == 1
        assert not app.screen.query_one("#confirm", Button).disabled
