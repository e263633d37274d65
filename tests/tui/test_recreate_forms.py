"""Recreate offered in the TUI: the publish form's second way (`a`) and `x`'s second way on a Docker port.

Driven by Pilot on the sample with the changes injected (`Changes.recreate` answers with core's own plan
of the sample's container): no engine, no root, no firewall.
"""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Button, Label, RadioButton, RadioSet, Static

from portscope.core.errors import NotRootError
from portscope.core.publish.errors import ConflictError
from portscope.core.publish.model import StoredBinding, binding_id
from portscope.core.publish.spec import PortSpec
from portscope.core.recreate.errors import RecreateFailed, RecreateRefused
from portscope.core.recreate.plan import PortChange, compose_advice
from portscope.core.recreate.run import RecreateRequest
from portscope.tui.data import build_model
from portscope.tui.publish_support import PublishRequest
from portscope.tui.recreate_support import adding, for_real, offers_recreate, removed_spec, removing
from portscope.tui.screens.confirm_change import ConfirmChange
from portscope.tui.screens.publish_form import PublishForm
from tests.tui.conftest import SIZE, loaded, notifications, wait_until
from tests.tui.publish_helpers import (
    WEB,
    Changes,
    CountingLoader,
    app_with,
    choose,
    form,
    open_confirm,
    open_form,
    preview,
    type_into,
    web_id,
)

BLANK_80 = "ipv4/tcp/0.0.0.0:32769->172.17.0.5:80"  # an ephemeral Docker port (requested `-p :80`)
API = "ipv4/tcp/127.0.0.1:9000->172.30.0.2:80"  # requested `-p 127.0.0.1:9000:80`
COMPOSE = {
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": "web",
    "com.docker.compose.project.config_files": "/srv/shop/compose.yaml",
}
ADD_8081 = RecreateRequest(container="web", change=PortChange(add=(PortSpec(80, "tcp", None, 8081),)), dry_run=True)
REMOVE_8080 = RecreateRequest(
    container="web", change=PortChange(remove=(PortSpec(80, "tcp", None, 8080),)), dry_run=True
)


# --------------------------------------------------------------------------- pure helpers


def test_the_forms_port_as_a_recreate_is_cores_parse_of_the_docker_p_text() -> None:
    assert adding(PublishRequest("web", "0.0.0.0", 8081, 80)) == ADD_8081  # all addresses: Docker's blank
    assert adding(PublishRequest("web", "0.0.0.0", None, 53, "udp")).change.add == (PortSpec(53, "udp"),)
    local = adding(PublishRequest("web", "127.0.0.1", None, 80))
    assert local.change.add == (PortSpec(80, "tcp", "127.0.0.1", None),)
    assert adding(PublishRequest("web", "fd00::1", 9001, 80)).change.add == (PortSpec(80, "tcp", "fd00::1", 9001),)
    assert for_real(ADD_8081) == RecreateRequest(container="web", change=ADD_8081.change, dry_run=False)


def test_x_removes_the_binding_as_the_container_asked_for_it(sample) -> None:
    model = build_model(sample)
    containers = {c.id: c for c in sample.containers}

    def spec(key: str) -> PortSpec:
        b = model.bindings[key]
        return removed_spec(b, containers.get(b.container_id or ""))

    assert spec(WEB) == PortSpec(80, "tcp", None, 8080)  # `-p 8080:80`: every address
    assert spec(BLANK_80) == PortSpec(80, "tcp", None, None)  # `-p :80`: the engine chose 32769
    assert spec(API) == PortSpec(80, "tcp", "127.0.0.1", 9000)
    web = model.bindings[WEB]
    assert removed_spec(web, None) == PortSpec(80, "tcp", None, 8080)  # no container read: the port as seen
    assert removing(web, containers[web.container_id]) == REMOVE_8080
    assert offers_recreate(web)
    assert not offers_recreate(model.bindings["ipv4/tcp/0.0.0.0:2222->10.99.0.5:22"])  # a hand-made DNAT


def test_the_real_recreate_is_cores_and_needs_root_for_a_real_one(monkeypatch) -> None:
    from portscope.core.publish import world
    from portscope.core.recreate import run
    from portscope.tui import recreate_support

    calls = []
    monkeypatch.setattr(run, "recreate", lambda request: calls.append(request) or "outcome")
    assert recreate_support.recreate_container(ADD_8081) == "outcome"
    monkeypatch.setattr(world.os, "geteuid", lambda: 1000)
    with pytest.raises(NotRootError, match="`portscope recreate` reads and changes the firewall"):
        recreate_support.recreate_container(for_real(ADD_8081))
    monkeypatch.setattr(world.os, "geteuid", lambda: 0)
    assert recreate_support.recreate_container(for_real(ADD_8081)) == "outcome"
    assert calls == [ADD_8081, for_real(ADD_8081)]


# --------------------------------------------------------------------------- the publish form's two ways


def ways(screen, set_id: str) -> list[tuple[str, str, bool]]:
    """(id, label, shown) of a RadioSet's buttons."""
    radio = screen.query_one(f"#{set_id}", RadioSet)
    return [(b.id or "", str(b.label), bool(b.display)) for b in radio.query(RadioButton)]


async def fill_web_8081(pilot) -> None:
    await choose(pilot, "container", web_id(pilot.app.model.snap))
    await choose(pilot, "host-ip", "0.0.0.0")
    await type_into(pilot, "host-port", "8081")
    await type_into(pilot, "container-port", "80")


async def choose_way(pilot, button_id: str) -> None:
    pilot.app.screen.query_one(f"#{button_id}", RadioButton).value = True
    await pilot.pause()


async def planned_shown(pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: form(app).previewed_way == "recreate" and form(app)._preview_worker is None
                     and form(app)._timer is None)  # fmt: skip
    await pilot.pause()


async def recreate_chosen(pilot) -> None:
    """The publish form open on web with 8081:80 filled in and the recreate way chosen."""
    await open_form(pilot, "2")
    await fill_web_8081(pilot)
    await choose_way(pilot, "way-recreate")


async def recreate_planned(pilot) -> None:
    """As `recreate_chosen`, once its plan (the dry run) is shown."""
    await recreate_chosen(pilot)
    await planned_shown(pilot)


async def test_the_form_offers_a_rule_or_a_recreate(sample) -> None:
    app = app_with(Changes(sample))
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        assert ways(app.screen, "way") == [
            ("way-rule", "add a portscope rule (instant, no restart)", True),
            ("way-recreate", "recreate with this port (permanent, restarts the container)", True),
        ]
        assert app.screen.query_one("#way-rule", RadioButton).value  # the instant way by default
        assert all(b.tooltip for b in app.screen.query(RadioButton))
        assert app.screen.query_one("#reason-field").display
        await choose_way(pilot, "way-recreate")
        assert form(app).way == "recreate"
        assert str(app.screen.query_one("#confirm", Button).label) == "Recreate"
        assert str(app.screen.query_one("#preview-title", Label).render()) == "Plan (dry run)"
        assert app.screen.query_one("#publish-box").border_subtitle == "enter recreate · esc cancel · tab next field"
        assert not app.screen.query_one("#reason-field").display  # a recreate keeps no reason
        await choose_way(pilot, "way-rule")
        assert str(app.screen.query_one("#confirm", Button).label) == "Publish"
        assert app.screen.query_one("#reason-field").display


async def test_recreate_preview_is_cores_plan_dry_run_in_a_worker(sample) -> None:
    changes = Changes(sample)
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        await fill_web_8081(pilot)
        await type_into(pilot, "reason", 'not "one" line')  # hidden by a recreate: not in its way
        await choose_way(pilot, "way-recreate")
        await planned_shown(pilot)
        text = preview(app)
        assert "would recreate (the container restarts)" in text
        assert "recreate web (13ab03c7992d), image portscope-busybox:test" in text
        assert "  + 8081:80/tcp" in text and "  = 8080:80/tcp" in text
        assert "stop it; rename it to web-portscope-old-13ab03c7992d; create the new web" in text
        assert "as docker run: docker run -d --name web -p 8080:80/tcp -p 8081:80/tcp" in text.replace("\n", "")
        assert changes.recreates == [ADD_8081]  # the dry run of the form's port, once
        assert threading.main_thread().name not in changes.threads
        assert changes.applied == [] and form(app).refused is None


async def test_confirm_recreates_the_planned_request_once_in_a_worker_then_refreshes(sample) -> None:
    changes = Changes(sample)
    changes.gate = threading.Event()
    load = CountingLoader(sample)
    app = app_with(changes, loader=load)
    async with app.run_test(size=SIZE) as pilot:
        await recreate_planned(pilot)
        await pilot.click("#confirm")
        await pilot.pause()
        button = app.screen.query_one("#confirm", Button)
        assert button.disabled and str(button.label) == "Recreating…"
        assert app.screen.query_one("#way", RadioSet).disabled  # the way cannot change under it
        await pilot.press("enter")
        await pilot.press("escape")  # not while recreating
        assert isinstance(app.screen, PublishForm)
        reads = load.calls
        changes.gate.set()
        await wait_until(pilot, lambda: not isinstance(app.screen, PublishForm))
        await loaded(pilot, reads=2)
        assert changes.recreates == [ADD_8081, for_real(ADD_8081)]
        assert changes.applied == [] and changes.previews == []  # no portscope rule on the way
        assert load.calls == reads + 1
        assert ("information", "Recreated: Recreated web (13ab03c7992d -> fefefefefefe)") in notifications(app)


async def test_a_recreate_is_not_confirmed_before_its_plan_is_shown(sample) -> None:
    changes = Changes(sample)
    changes.plan_gate = threading.Event()
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await recreate_chosen(pilot)
        await pilot.press("enter")  # in a field: confirm, while the dry run has not even started
        await pilot.pause()
        assert any("plan is not shown yet" in text for _, text in notifications(app))
        assert isinstance(app.screen, PublishForm) and not form(app).applying
        changes.plan_gate.set()
        await planned_shown(pilot)
        assert changes.recreates == [ADD_8081]  # the dry run only


async def test_recreate_refusals_and_failures_are_one_line(sample) -> None:
    changes = Changes(sample)
    changes.plan_error = ConflictError("0.0.0.0:8081/tcp is in use by nginx (pid 42); choose another host port "
                                       "(or --force)")  # fmt: skip
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await recreate_planned(pilot)
        assert f"✖ refused: {changes.plan_error}" in preview(app).replace("\n", "")
        await pilot.click("#confirm")
        await pilot.pause()
        assert ("error", f"Cannot recreate: {changes.plan_error}") in notifications(app)
        assert changes.recreates == [ADD_8081]
    changes = Changes(sample)
    changes.recreate_error = RecreateFailed(
        "docker start web: port is already allocated\nthe original web was put back and started"
    )
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await recreate_planned(pilot)
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: any(s == "error" for s, _ in notifications(app)))
        await pilot.pause()
        assert ("error", "Recreate failed: docker start web: port is already allocated") in notifications(app)
        assert isinstance(app.screen, PublishForm)
        assert str(app.screen.query_one("#confirm", Button).label) == "Recreate"
        assert not app.screen.query_one("#confirm", Button).disabled


# --------------------------------------------------------------------------- x on a Docker port: block or recreate


async def test_x_on_a_docker_port_offers_block_and_recreate_without_it(sample) -> None:
    changes = Changes(sample)
    load = CountingLoader(sample)
    app = app_with(changes, loader=load)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, WEB)
        assert screen.query_one("#change-way").display
        assert ways(screen, "change-way") == [
            ("close-block", "block (instant, reversible)", True),
            ("close-recreate", "recreate without this port (restarts the container)", True),
        ]
        assert screen.way == "block" and "-j DROP" in preview(app)
        await wait_until(pilot, lambda: "recreate" in screen.succeeded)
        assert changes.recreates == [REMOVE_8080]  # its plan, dry-run beside the block's rules
        await pilot.click("#close-recreate")
        await pilot.pause()
        assert screen.way == "recreate"
        text = preview(app)
        assert "would recreate (the container restarts)" in text and "  - 8080:80/tcp" in text
        assert "-p 8080" not in text and "-j DROP" not in text
        assert screen.query_one("#change-box").border_title == "Recreate without 0.0.0.0:8080/tcp → web:80"
        assert str(screen.query_one("#confirm", Button).label) == "Recreate"
        assert str(screen.query_one("#change-preview-title", Label).render()) == "Plan (dry run)"
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmChange))
        await loaded(pilot, reads=2)
        assert changes.recreates == [REMOVE_8080, for_real(REMOVE_8080)]
        assert changes.applied == []  # not blocked
        assert load.calls == 2
        assert ("information", "Recreate done: Recreated web (13ab03c7992d -> fefefefefefe)") in notifications(app)
        assert threading.main_thread().name not in changes.threads


async def test_x_then_block_still_blocks(sample) -> None:
    changes = Changes(sample)
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, WEB)
        await wait_until(pilot, lambda: "recreate" in screen.succeeded)
        await pilot.click("#close-recreate")
        await pilot.click("#close-block")
        await pilot.pause()
        assert screen.way == "block" and str(screen.query_one("#confirm", Button).label) == "Block"
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmChange))
        assert changes.applied == [screen.change]
        assert changes.recreates == [REMOVE_8080]  # the dry run only


async def test_x_on_a_compose_container_gives_composes_advice_instead_of_recreate(sample) -> None:
    changes = Changes(sample)
    changes.labels["web"] = COMPOSE
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, WEB)
        msg = screen.query_one("#change-recreate-msg", Static)
        await wait_until(pilot, lambda: bool(msg.display))
        await pilot.pause()
        advice = compose_advice("web", COMPOSE, changes.recreates[0].change)
        assert str(msg.render()).replace("\n", "") == f"Recreate is not offered: {advice}"
        assert "docker compose up -d web" in advice
        assert ways(screen, "change-way")[1] == (
            "close-recreate",
            "recreate without this port (restarts the container)",
            False,
        )  # hidden: the advice stands in its place
        assert screen.way == "block" and screen.ready
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmChange))
        assert changes.applied == [screen.change]
        assert [r.dry_run for r in changes.recreates] == [True]


async def test_a_refusal_arriving_while_recreate_is_chosen_goes_back_to_block(sample) -> None:
    changes = Changes(sample)
    changes.plan_gate = threading.Event()
    changes.plan_error = RecreateRefused("web: not recreated: it was started with --rm, so stopping it would "
                                         "delete it")  # fmt: skip
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, WEB)
        await pilot.click("#close-recreate")
        await pilot.pause()
        assert screen.way == "recreate" and not screen.ready
        assert "dry run…" in preview(app)
        await pilot.press("y")
        await pilot.pause()
        assert any("nothing to confirm" in text for _, text in notifications(app))
        changes.plan_gate.set()
        await wait_until(pilot, lambda: screen.way == "block")
        await pilot.pause()
        assert "started with --rm" in str(screen.query_one("#change-recreate-msg", Static).render())
        assert "-j DROP" in preview(app)
        assert changes.applied == [] and [r.dry_run for r in changes.recreates] == [True]


async def test_recreate_is_offered_only_beside_a_block_of_a_docker_port(sample) -> None:
    block = StoredBinding(id=binding_id("block", "0.0.0.0", 8080, "tcp"), kind="block", host_ip="0.0.0.0",
                          host_port=8080, protocol="tcp", container_port=80, container_name="web")  # fmt: skip
    changes = Changes(sample, [block])
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_confirm(pilot, WEB)  # blocked already: x unblocks
        assert screen.change is not None and screen.change.action == "unblock"
        assert not screen.query_one("#change-way").display
        await pilot.press("escape")
        await pilot.pause()
        screen = await open_confirm(pilot, "ipv4/tcp/0.0.0.0:2222->10.99.0.5:22")  # a hand-made DNAT
        assert screen.change is not None and screen.change.action == "block"
        assert not screen.query_one("#change-way").display
        await pilot.press("escape")
    assert changes.recreates == []
