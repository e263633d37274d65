"""The publish form (`a`), driven by Pilot on the sample, and the pure helpers behind it.

The app runs live over the sample (it was read as root), with the changes injected (see
`tests.tui.publish_helpers.Changes`), so nothing needs root, touches the firewall or talks to an engine.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from textual.binding import Binding
from textual.widgets import Button, Input, Select, Static
from textual.widgets.select import InvalidSelectValueError

from portscope.core.model import Snapshot
from portscope.core.publish.errors import ConflictError, InputError, RuleRefusedError
from portscope.core.publish.model import StoredBinding, binding_id
from portscope.core.publish.targets import container_target, find_container
from portscope.core.publish.validate import PROTOCOLS, parse_port
from portscope.tui.data import build_model
from portscope.tui.publish_support import (
    ALL_ADDRESSES,
    ALL_LABEL,
    BindingChange,
    FormValues,
    PublishRequest,
    address_options,
    change_refusal,
    check_form,
    plan_change,
    rule_lines,
)
from portscope.tui.screens.confirm_change import ConfirmChange
from portscope.tui.screens.publish_form import PublishForm
from tests.tui.conftest import SIZE, capture_app, loaded, non_root, select_options, wait_until
from tests.tui.publish_helpers import (
    WEB,
    Changes,
    CountingLoader,
    app_with,
    choose,
    form,
    message,
    notices,
    open_form,
    preview,
    previewed,
    rendered,
    type_into,
    web_id,
    with_ipv6,
)

# --------------------------------------------------------------------------- pure helpers


def test_check_form_uses_cores_messages(sample) -> None:
    web = web_id(sample)
    good = check_form(FormValues(web, "127.0.0.1", "8081", "80", "tcp", "demo"), sample)
    assert good.errors == {}
    assert good.request == PublishRequest("web", "127.0.0.1", 8081, 80, "tcp", "demo")
    assert good.request.spec_text == "127.0.0.1:8081:80/tcp"
    blank = check_form(FormValues(web, ALL_ADDRESSES, "", "53", "udp"), sample)
    assert blank.request is not None and blank.request.host_port is None
    assert blank.request.spec_text == "0.0.0.0::53/udp"
    for bad in ("0", "65536", "abc", "80-"):
        checked = check_form(FormValues(web, ALL_ADDRESSES, bad, bad), sample)
        assert checked.request is None
        with pytest.raises(InputError) as host:
            parse_port(bad, "host port")
        with pytest.raises(InputError) as cont:
            parse_port(bad, "container port")
        assert checked.errors["host-port"] == str(host.value)
        assert checked.errors["container-port"] == str(cont.value)
    quoted = check_form(FormValues(web, ALL_ADDRESSES, "", "80", "tcp", 'say "hi"'), sample)
    assert quoted.errors["reason"] == "--reason must be one line of plain text without quotes or backslashes"
    assert check_form(FormValues(None, ALL_ADDRESSES, "", "80"), sample).errors["container"]


def test_ipv6_host_address_with_an_ipv4_container_is_refused_with_cores_message(sample) -> None:
    snap = with_ipv6(sample)
    checked = check_form(FormValues(web_id(snap), "fd00::1", "8081", "80"), snap)
    assert checked.request is None
    with pytest.raises(InputError) as core:
        container_target(find_container(snap.containers, "web"), "ipv6", snap.host)
    assert checked.errors == {"container": str(core.value)}
    assert "only an IPv4 address" in checked.errors["container"]


def test_address_choices_are_the_hosts_plus_all_addresses(sample) -> None:
    options = address_options(sample.host)
    assert options[0] == (ALL_LABEL, "0.0.0.0")
    assert [v for _, v in options[1:]] == ["10.203.0.1", "127.0.0.1", "172.17.0.1", "172.30.0.1"]
    assert ("172.17.0.1 (docker0)", "172.17.0.1") in options


def test_plan_unpublish_block_unblock(sample) -> None:
    model = build_model(sample)
    web = model.bindings[WEB]
    assert plan_change(web, []) == BindingChange("block", WEB, "0.0.0.0:8080/tcp → web:80", "docker")
    block = StoredBinding(id=binding_id("block", "0.0.0.0", 8080, "tcp"), kind="block", host_ip="0.0.0.0",
                          host_port=8080, protocol="tcp", container_port=80)  # fmt: skip
    assert plan_change(web, [block]) == BindingChange("unblock", block.id, "0.0.0.0:8080/tcp → web:80", "docker")
    mine = replace(web, owner="portscope")
    stored = StoredBinding(id="ps-12345678", kind="publish", host_ip="0.0.0.0", host_port=8080, protocol="tcp",
                           container_port=80)  # fmt: skip
    assert plan_change(mine, [stored]).action == "unpublish"
    assert plan_change(mine, [stored]).ref == "ps-12345678"
    assert plan_change(mine, []).ref == "0.0.0.0:8080/tcp"


def test_nothing_can_change_a_capture_or_without_root(sample) -> None:
    assert "is a capture" in (change_refusal("/x/sample.json", sample) or "")
    assert "run portscope as root" in (change_refusal(None, non_root(sample)) or "")
    assert change_refusal(None, None) == "No data yet: wait for the first read"
    assert change_refusal(None, sample) is None


def test_host_addresses_are_checked_by_core(sample) -> None:
    web = web_id(sample)
    for address, expected in (
        ("::1", "::1 cannot be forwarded to a container (IPv6 has no route_localnet): use 127.0.0.1"),
        ("10.1.2.3", "10.1.2.3 is not an address of this host: use one of `ip addr`, 0.0.0.0 or 127.0.0.1"),
        ("nonsense", "host address 'nonsense' is not an IP address: use e.g. 0.0.0.0, 127.0.0.1 or [::]"),
    ):
        assert check_form(FormValues(web, address, "", "80"), sample).errors == {"host-ip": expected}
    for address in ("0.0.0.0", "127.0.0.1", "172.17.0.1"):
        assert check_form(FormValues(web, address, "", "80"), sample).errors == {}


def test_the_real_changes_are_cores_calls(monkeypatch, tmp_path) -> None:
    """The defaults the app uses: core's steps as the CLI runs them, `ops.parse_*` then `ops.run`."""
    from portscope.core.publish import ops, state
    from portscope.core.publish.spec import BindingRef, PortSpec
    from portscope.tui import publish_support

    calls = []
    monkeypatch.setattr(ops, "run", lambda request, **kw: calls.append((request, kw)) or request.action)
    request = PublishRequest("web", "::", None, 53, "udp", "dns for v6")
    assert publish_support.preview_change(request) == "publish"
    assert publish_support.apply_change(request) == "publish"
    parsed = ops.PublishRequest(target="web", spec=PortSpec(53, "udp", "::", None), reason="dns for v6")
    assert calls == [(parsed, {"dry_run": True}), (parsed, {"dry_run": False})]
    assert parsed == ops.parse_publish("web", "[::]::53/udp", reason="dns for v6")  # as `portscope publish` parses
    calls.clear()
    refs = {"unpublish": "ps-1a2b3c4d", "block": WEB, "unblock": "[::]:8080/udp"}
    for action, ref in refs.items():
        assert publish_support.apply_change(BindingChange(action, ref, "s", "docker")) == action  # type: ignore[arg-type]
    assert calls == [
        (ops.BindingRequest("unpublish", "ps-1a2b3c4d", BindingRef(binding_id="ps-1a2b3c4d")), {"dry_run": False}),
        (ops.BindingRequest("block", WEB, None), {"dry_run": False}),
        (ops.BindingRequest("unblock", "[::]:8080/udp", BindingRef(None, 8080, "udp", "::")), {"dry_run": False}),
    ]
    monkeypatch.setenv("PORTSCOPE_STATE_DIR", str(tmp_path))
    assert publish_support.read_stored() == []
    block = StoredBinding(id="ps-0badc0de", kind="block", host_ip="0.0.0.0", host_port=8080, protocol="tcp",
                          container_port=80)  # fmt: skip
    state.save(str(tmp_path), state.State([block]))
    assert publish_support.read_stored() == [block]


def test_every_new_binding_has_an_id_and_a_tooltip() -> None:
    from portscope.tui.widgets.containers_view import ContainersView
    from portscope.tui.widgets.ports_view import PortsView

    keys = set()
    for cls in (PublishForm, ConfirmChange, PortsView, ContainersView):
        for binding in Binding.make_bindings(cls.__dict__["BINDINGS"]):
            assert binding.id and binding.tooltip, (cls.__name__, binding.key)
            keys.add((cls.__name__, binding.key))
    assert {("PortsView", "a"), ("PortsView", "x"), ("ContainersView", "a")} <= keys


# --------------------------------------------------------------------------- the publish form


async def test_open_from_containers_preselects_the_container_and_from_ports_too(sample) -> None:
    changes = Changes(sample)
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("2")
        table = app.view("containers").table
        table.move_cursor(row=table.shown_keys.index(web_id(sample)))
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, PublishForm))
        assert app.screen.query_one("#container", Select).value == web_id(sample)
        assert app.focused is app.screen.query_one("#container-port", Input)
        await pilot.press("escape")
        assert not isinstance(app.screen, PublishForm)
        await pilot.press("1")
        ports = app.view("ports").table
        ports.move_cursor(row=ports.shown_keys.index(WEB))
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, PublishForm))
        assert app.screen.query_one("#container", Select).value == web_id(sample)
        names = [label.split()[0] for label, _ in select_options(app.screen.query_one("#container", Select))[1:]]
        assert names == ["api", "blank", "cache", "dns", "web", "worker"]  # running only: not `old`
        await pilot.press("escape")
    assert changes.applied == []


async def test_a_stopped_container_is_not_offered_and_core_says_why(sample) -> None:
    app = app_with(Changes(sample))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("2")
        table = app.view("containers").table
        old = next(c.id for c in sample.containers if c.name == "old")
        table.move_cursor(row=table.shown_keys.index(old))
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, PublishForm))
        assert app.screen.query_one("#container", Select).is_blank()
        assert "container old is created: start it first (docker start old)" in message(app, "container")


async def test_bad_ports_show_cores_message_under_the_field_as_you_type(sample) -> None:
    changes = Changes(sample)
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        assert message(app, "container-port") == ""  # nothing shown before the field is touched
        for bad in ("0", "65536", "abc", "80-"):
            for field, what in (("host-port", "host port"), ("container-port", "container port")):
                await type_into(pilot, field, bad)
                with pytest.raises(InputError) as core:
                    parse_port(bad, what)
                assert message(app, field) == f"✖ {core.value}"
                assert app.screen.query_one(f"#{field}", Input).has_class("-invalid")
        await type_into(pilot, "host-port", "")
        assert message(app, "host-port") == ""  # blank: an ephemeral port
        placeholder = app.screen.query_one("#host-port", Input).placeholder
        assert "blank" in placeholder and "ephemeral" in placeholder
        await type_into(pilot, "container-port", "80")
        assert message(app, "container-port") == ""
        assert not app.screen.query_one("#container-port", Input).has_class("-invalid")


async def test_protocol_is_chosen_from_cores_list_only(sample) -> None:
    app = app_with(Changes(sample))
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        protocol = app.screen.query_one("#protocol", Select)
        assert [value for _, value in select_options(protocol)] == list(PROTOCOLS)  # no blank, nothing typed
        assert protocol.value == "tcp"
        with pytest.raises(InvalidSelectValueError):
            protocol.value = "icmp"
        await choose(pilot, "protocol", "udp")
        await type_into(pilot, "container-port", "53")
        assert form(app).checked.request is not None and form(app).checked.request.protocol == "udp"


async def test_ipv6_host_address_with_an_ipv4_container_is_refused_in_the_form(sample) -> None:
    snap = with_ipv6(sample)
    changes = Changes(snap)
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        await choose(pilot, "container", web_id(snap))
        await type_into(pilot, "container-port", "80")
        await choose(pilot, "host-ip", "fd00::1")
        assert message(app, "container") == (
            "✖ container web has only an IPv4 address: use an IPv4 host address (or none)"
        )
        assert form(app).checked.request is None
        await pilot.pause(0.5)
        assert changes.previews == []  # no dry run of a request that cannot be made


async def test_all_addresses_shows_the_warning(sample) -> None:
    app = app_with(Changes(sample))
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        warning = app.screen.query_one("#all-warning", Static)
        assert app.screen.query_one("#host-ip", Select).value == "127.0.0.1"  # the safe default
        assert not warning.display
        await choose(pilot, "host-ip", ALL_ADDRESSES)
        assert warning.display and "open to every network" in str(warning.render())
        await choose(pilot, "host-ip", "172.17.0.1")
        assert not warning.display


async def test_preview_shows_the_dry_runs_exact_rules_debounced_in_a_worker(sample) -> None:
    changes = Changes(sample)
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        await choose(pilot, "container", web_id(sample))
        await choose(pilot, "host-ip", ALL_ADDRESSES)
        await type_into(pilot, "host-port", "8081")
        await type_into(pilot, "container-port", "80")
        request = PublishRequest("web", "0.0.0.0", 8081, 80, "tcp", None)
        await previewed(pilot, request)
        expected = rendered(sample, request)
        text = preview(app)
        for line in rule_lines(expected):
            assert line in text.replace("\n", "")
        assert "-j DNAT --to-destination 172.30.0.4:80" in text
        assert changes.previews == [request]  # typing "80" made one dry run, not two
        assert threading.main_thread().name not in changes.threads
        assert changes.applied == []


async def test_preview_shows_cores_refusal(sample) -> None:
    changes = Changes(sample)
    changes.preview_error = ConflictError(
        "0.0.0.0:8080/tcp is already published by docker (to web:80); choose another host port (or --force)"
    )
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        await choose(pilot, "container", web_id(sample))
        await type_into(pilot, "host-port", "8080")
        await type_into(pilot, "container-port", "80")
        await previewed(pilot, PublishRequest("web", "127.0.0.1", 8080, 80))
        assert "✖ refused: 0.0.0.0:8080/tcp is already published by docker" in preview(app)
        await pilot.press("enter")
        await pilot.pause()
        assert changes.applied == []
        assert ("error", f"Cannot publish: {changes.preview_error}") in notices(app)


async def test_confirm_applies_once_in_a_worker_then_refreshes(sample) -> None:
    changes = Changes(sample)
    changes.gate = threading.Event()
    load = CountingLoader(sample)
    app = app_with(changes, loader=load)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        await choose(pilot, "container", web_id(sample))
        await type_into(pilot, "host-port", "8081")
        await type_into(pilot, "reason", "demo")
        await type_into(pilot, "container-port", "80")
        request = PublishRequest("web", "127.0.0.1", 8081, 80, "tcp", "demo")
        await pilot.press("enter")  # enter in a field confirms
        await pilot.pause()
        button = app.screen.query_one("#confirm", Button)
        assert button.disabled and str(button.label) == "Publishing…"
        await pilot.press("enter")
        await pilot.click("#confirm")
        await pilot.press("escape")  # not while applying
        assert isinstance(app.screen, PublishForm)
        reads = load.calls
        changes.gate.set()
        await wait_until(pilot, lambda: not isinstance(app.screen, PublishForm))
        await loaded(pilot, reads=2)
        assert changes.applied == [request]
        assert load.calls == reads + 1  # read again at once
        assert any("Published ps-" in text and "127.0.0.1:8081/tcp -> web:80" in text for _, text in notices(app))
        assert threading.main_thread().name not in changes.threads


async def test_a_change_during_a_read_reads_again_when_it_ends(sample) -> None:
    gate = threading.Event()
    calls = []

    def load() -> Snapshot:
        calls.append(1)
        if len(calls) == 2:
            gate.wait(timeout=30)
        return sample

    app = app_with(Changes(sample), loader=load)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        app.start_read()
        assert app.reading
        app.read_now()  # a change was applied while the read ran: its data may predate the change
        gate.set()
        await loaded(pilot, reads=3)
        assert len(calls) == 3


async def test_cancel_changes_nothing(sample) -> None:
    changes = Changes(sample)
    load = CountingLoader(sample)
    app = app_with(changes, loader=load)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        await choose(pilot, "container", web_id(sample))
        await type_into(pilot, "container-port", "80")
        await pilot.click("#cancel")
        await pilot.pause()
        assert not isinstance(app.screen, PublishForm)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, PublishForm))
        await pilot.press("escape")
        await pilot.pause(0.5)
        assert changes.applied == [] and load.calls == 1


async def test_confirm_with_bad_fields_shows_every_message_and_applies_nothing(sample) -> None:
    changes = Changes(sample)
    app = app_with(changes)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "1")
        await pilot.click("#confirm")
        await pilot.pause()
        assert message(app, "container") == "✖ choose a running container"
        assert "container port '' is not a port number" in message(app, "container-port")
        assert changes.applied == []
        assert isinstance(app.screen, PublishForm)


async def test_an_error_from_the_applier_is_a_notification_and_the_form_stays(sample) -> None:
    changes = Changes(sample)
    changes.apply_error = RuleRefusedError("the kernel refused the rules (iptables-restore: line 3 failed); "
                                           "nothing was changed")  # fmt: skip
    load = CountingLoader(sample)
    app = app_with(changes, loader=load)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "2")
        await choose(pilot, "container", web_id(sample))
        await type_into(pilot, "container-port", "80")
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: any(s == "error" for s, _ in notices(app)))
        await pilot.pause()
        assert ("error", f"Publish failed: {changes.apply_error}") in notices(app)
        assert isinstance(app.screen, PublishForm)
        assert not app.screen.query_one("#confirm", Button).disabled
        assert len(changes.applied) == 1 and load.calls == 1


async def test_a_capture_or_a_non_root_read_gets_a_notification_not_a_form(sample) -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for keys in (("1", "a"), ("1", "x"), ("2", "a")):
            await pilot.press(*keys)
            await pilot.pause()
            assert not isinstance(app.screen, PublishForm | ConfirmChange)
        assert any("sample.json is a capture: it cannot be changed" in text for _, text in notices(app))
    changes = Changes(sample)
    app = app_with(changes, snap=non_root(sample))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("a", "x")
        await pilot.pause()
        assert not isinstance(app.screen, PublishForm | ConfirmChange)
        assert any("run portscope as root" in text for _, text in notices(app))
    assert changes.previews == changes.applied == []
