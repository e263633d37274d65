"""The fleet in the TUI, on a fleet capture (tests/tui/fleet_helpers.py): the merged model, the Hosts view, the
HOST column, the `host:` filter, stable keys across re-reads, and changes on the selected row's host."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Select, TabbedContent

from portscope.cli.fleet_cmd import read_fleet_capture
from portscope.cli.main import main
from portscope.core.fleet.change import RemoteChange
from portscope.core.snapshot import read_capture
from portscope.tui.cells import Cell, Row, filter_rows
from portscope.tui.data import COLUMNS, VIEWS, build_model
from portscope.tui.fleet_app import FleetApp
from portscope.tui.fleet_model import HOSTS, fleet_columns, fleet_key, host_part, merge
from portscope.tui.keymap import help_sections
from portscope.tui.publish_support import BindingChange, PublishRequest, Reported, preview_text
from portscope.tui.remote_changes import LOCAL, HostChanges, RemoteChangeError, RemoteHost, remote_report
from portscope.tui.screens.confirm_change import ConfirmChange
from portscope.tui.screens.detail import DetailScreen
from portscope.tui.screens.publish_form import PublishForm
from portscope.tui.widgets.banner import Banner
from portscope.tui.widgets.status_line import StatusLine
from tests.tui.conftest import SAMPLE, SIZE, capture_app, loaded, notifications, wait_until
from tests.tui.fleet_helpers import (
    FLEET,
    H3_ERROR,
    CountingReader,
    capture_fleet_app,
    live_fleet_app,
    write_fleet_capture,
)
from tests.tui.publish_helpers import WEB, Changes, preview, type_into, web_id


@pytest.fixture
def fleet_file(tmp_path):
    return write_fleet_capture(tmp_path / "fleet.json")


def _parts(path):
    reads = {r.host: r for r in read_fleet_capture(str(path))}
    return [host_part(host, n, reads[host]) for n, host in enumerate(FLEET)]


def _column(view: str, key: str) -> int:
    return [c.key for c in fleet_columns(view)].index(key)


# --------------------------------------------------------------------------- the merged model (no app)


def test_each_hosts_rows_are_its_own_models_with_the_host_added(fleet_file) -> None:
    model = merge(_parts(fleet_file))
    own = build_model(read_capture(str(SAMPLE)))
    for view in VIEWS:
        h1 = [r for r in model.rows[view] if r.host == "h1"]
        assert [r.key for r in h1] == [fleet_key("h1", r.key) for r in own.rows[view]]
        at = _column(view, "fleet-host")
        assert all(r.cells[at].text == "h1" for r in h1)
        assert [tuple(c.text for c in r.cells[:at] + r.cells[at + 1 :]) for r in h1] == [
            tuple(c.text for c in r.cells) for r in own.rows[view]
        ]
        assert {r.host for r in model.rows[view]} == {"h1", "ops@h2"}  # h3 was not read
    assert model.count(HOSTS) == 3
    assert model.bindings[fleet_key("ops@h2", WEB)].host_port == 8080


def test_columns_gain_host_and_the_published_address_is_renamed() -> None:
    ports = fleet_columns("ports")
    assert [c.label for c in ports[:3]] == ["!", "HOST", "PUBLISHED"]
    assert [c.label for c in fleet_columns("conflicts")][:2] == ["HOST", "SEVERITY"]
    assert [c.label for c in COLUMNS["ports"]][1] == "HOST"  # one host: as it was
    for view in VIEWS:
        assert len(fleet_columns(view)) == len(COLUMNS[view]) + 1


def test_keys_are_stable_and_an_unchanged_host_keeps_its_model_across_reads(fleet_file) -> None:
    first = _parts(fleet_file)
    reads = {r.host: r for r in read_fleet_capture(str(fleet_file))}  # new snapshots, the same facts
    second = [host_part(p.host, p.index, reads[p.host], p) for p in first]
    assert second[0].model is first[0].model and second[1].model is first[1].model
    a, b = merge(first), merge(second)
    for view in (*VIEWS, HOSTS):
        assert [r.key for r in a.rows[view]] == [r.key for r in b.rows[view]]


def test_host_filter_term() -> None:
    rows = [Row(key=f"{h} k", cells=(Cell(h),), search=f"tcp {h}", host=h) for h in ("h1", "h10", "ops@h2")]
    assert [r.host for r in filter_rows(rows, "host:h1")] == ["h1"]  # exactly h1, not h10
    assert [r.host for r in filter_rows(rows, "host:h")] == ["h1", "h10", "ops@h2"]  # a part: every host holding it
    assert [r.host for r in filter_rows(rows, "HOST:OPS tcp")] == ["ops@h2"]
    assert filter_rows(rows, "host:h1 udp") == []
    assert len(filter_rows(rows, "host:")) == 3  # still typing


# --------------------------------------------------------------------------- the app on a fleet capture


async def test_hosts_view_lists_every_host_and_why_one_was_not_read(fleet_file) -> None:
    app = capture_fleet_app(fleet_file)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("7")
        assert app.query_one(TabbedContent).active == HOSTS
        table = app.view(HOSTS).table
        assert table.shown_keys == list(FLEET)
        rows = {key: [c.text for c in table.row_data(key).cells] for key in FLEET}
        reachable, ports, errors = _column(HOSTS, "reachable"), _column(HOSTS, "ports"), _column(HOSTS, "error")
        assert [rows[h][reachable] for h in FLEET] == ["yes", "yes", "no"]
        assert rows["h1"][ports] == "7" and rows["ops@h2"][ports] == "7"
        assert rows["h3"][errors].startswith("h3: cannot connect")
        table.move_cursor(row=2)
        await pilot.pause()
        assert H3_ERROR in str(app.query_one("#detail-text").render())
        status = str(app.query_one(StatusLine).render())
        assert "2/3 hosts reachable" in status and "14 ports" in status and "capture fleet.json" in status
        assert H3_ERROR in str(app.query_one(Banner).render())


async def test_every_view_has_each_hosts_rows_with_its_findings(fleet_file) -> None:
    app = capture_fleet_app(fleet_file)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        ports = app.view("ports").table
        key = fleet_key("ops@h2", "ipv4/tcp/0.0.0.0:2222->10.99.0.5:22")
        row = ports.row_data(key)
        assert row is not None
        assert row.cells[_column("ports", "fleet-host")].text == "ops@h2"
        assert row.cells[0].text == "✖" and "shadowed-listener" in row.cells[_column("ports", "issues")].text
        ports.move_cursor(row=ports.shown_keys.index(key))
        await pilot.pause()
        detail = str(app.query_one("#detail-text").render())
        assert detail.startswith("host ops@h2") and "0.0.0.0:2222/tcp → 10.99.0.5:22" in detail
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.title_text == "Ports: ops@h2 0.0.0.0:2222/tcp"
        own = app.model.part("ops@h2").model
        assert app.screen.copy == own.findings_by_binding["ipv4/tcp/0.0.0.0:2222->10.99.0.5:22"][0].fix
        await pilot.press("escape")
        for n, view in enumerate(VIEWS, start=1):
            await pilot.press(str(n))
            assert {k.split(" ", 1)[0] for k in app.view(view).table.shown_keys} == {"h1", "ops@h2"}
        await pilot.press("6")  # the rules marked are the selected binding's, on its host
        marked = app.query_one("#view-rules").marked
        assert marked and all(k.startswith("ops@h2 ") for k in marked)


async def test_host_filter_in_a_view_and_the_count_in_its_tab(fleet_file) -> None:
    app = capture_fleet_app(fleet_file)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"host:ops 8080", "enter")
        await pilot.pause()
        assert app.view("ports").table.shown_keys == [fleet_key("ops@h2", WEB)]
        assert str(app.query_one(TabbedContent).get_tab("ports").label) == "Ports 1/14"
        await pilot.press("6", "slash", *"host:h1", "enter")
        await pilot.pause()
        shown = app.view("rules").table.shown_keys
        assert shown and all(k.startswith("h1 ") for k in shown)


async def test_keys_and_the_cursor_stay_across_a_re_read(fleet_file) -> None:
    app, reader = live_fleet_app(fleet_file)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        ports = app.view("ports").table
        before = list(ports.shown_keys)
        key = fleet_key("ops@h2", WEB)
        ports.move_cursor(row=before.index(key))
        await pilot.press("r")
        await loaded(pilot, reads=2)
        assert reader.asked == [None, None]
        assert ports.shown_keys == before and ports.selected_key == key


async def test_each_host_is_shown_as_it_arrives(fleet_file) -> None:
    gate = threading.Event()
    reads = read_fleet_capture(str(fleet_file))

    def reader(hosts):
        for read in reads:
            if read.host == "ops@h2":
                gate.wait(timeout=30)  # h2 answers late
            yield read

    app = FleetApp(reader, list(FLEET), refresh=0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model is not None and app.model.part("h1").read is not None)
        await pilot.press("7")
        state = _column(HOSTS, "reachable")
        table = app.view(HOSTS).table
        assert [table.row_data(h).cells[state].text for h in FLEET] == ["yes", "reading…", "reading…"]
        assert {k.split(" ", 1)[0] for k in app.view("ports").table.shown_keys} <= {"h1"}
        status = str(app.query_one(StatusLine).render())
        assert "1/3 hosts reachable, 2 reading" in status and "reading…" in status
        await pilot.press("1")  # the UI answers while h2 is read
        assert app.query_one(TabbedContent).active == "ports"
        gate.set()
        await loaded(pilot)
        await pilot.press("7")
        assert [table.row_data(h).cells[state].text for h in FLEET] == ["yes", "yes", "no"]


async def test_full_reads_are_re_armed_after_each_and_never_overlap(fleet_file) -> None:
    reader = CountingReader(fleet_file)
    running, most = [0], [0]

    def read(hosts):
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            yield from reader(hosts)
        finally:
            running[0] -= 1

    app = FleetApp(read, list(FLEET), refresh=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.reads >= 3, tries=3000)
        assert most[0] == 1 and set(reader.asked) == {None}


def test_help_and_palette_name_the_hosts_view(fleet_file) -> None:
    app = capture_fleet_app(fleet_file)
    sections = dict(help_sections(app))
    assert ("7", "Hosts", "Switch to the Hosts view") in sections["Everywhere"]
    assert any(key == "a" for key, *_ in sections["Hosts view"])
    assert "Hosts view" not in dict(help_sections(capture_app()))


async def test_a_fleet_capture_cannot_be_changed(fleet_file) -> None:
    app = capture_fleet_app(fleet_file)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, PublishForm)
        assert any("is a capture: it cannot be changed" in text for _, text in notifications(app))


# --------------------------------------------------------------------------- changes on the selected row's host


def _changes(fleet_file):
    sample = read_capture(str(SAMPLE))
    made: dict[str, Changes] = {host: Changes(sample) for host in FLEET}

    def changes(host: str) -> HostChanges:
        c = made[host]
        return HostChanges(preview=c.preview, apply=c.apply, read_state=c.read_state)

    return made, changes


async def test_publish_goes_to_the_selected_rows_host_and_reads_that_host_again(fleet_file) -> None:
    made, changes = _changes(fleet_file)
    app, reader = live_fleet_app(fleet_file, changes)
    sample = read_capture(str(SAMPLE))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("2")
        containers = app.view("containers").table
        containers.move_cursor(row=containers.shown_keys.index(fleet_key("ops@h2", web_id(sample))))
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, PublishForm))
        form = app.screen
        assert form.host == "ops@h2" and "ops@h2" in str(form.query_one("#publish-box").border_title)
        assert form.query_one("#container", Select).value == web_id(sample)
        assert not form.query("#way")  # no recreate on another host
        await type_into(pilot, "host-port", "8081")
        await type_into(pilot, "container-port", "80")
        request = PublishRequest("web", "127.0.0.1", 8081, 80, "tcp", None)
        await wait_until(pilot, lambda: form.previewed == request and form._preview_worker is None)
        await pilot.pause()
        assert "-j DNAT --to-destination 172.30.0.4:80" in preview(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, PublishForm))
        await loaded(pilot, reads=2)
        assert made["ops@h2"].applied == [request] and made["h1"].previews == made["h1"].applied == []
        assert reader.asked == [None, frozenset({"ops@h2"})]  # that host only
        assert threading.main_thread().name not in made["ops@h2"].threads


async def test_unpublish_or_block_on_the_bindings_host(fleet_file) -> None:
    made, changes = _changes(fleet_file)
    app, reader = live_fleet_app(fleet_file, changes)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        ports = app.view("ports").table
        ports.move_cursor(row=ports.shown_keys.index(fleet_key("h1", WEB)))
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmChange))
        screen = app.screen
        await wait_until(pilot, lambda: screen.ready)
        assert screen.host == "h1" and "on h1" in str(screen.query_one("#change-subject").render())
        assert not screen.query_one("#change-way").display  # block only: no recreate on a fleet's host
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmChange))
        await loaded(pilot, reads=2)
        (change,) = made["h1"].applied
        assert isinstance(change, BindingChange) and change.action == "block" and made["ops@h2"].applied == []
        assert reader.asked[-1] == frozenset({"h1"})


async def test_an_unreachable_host_cannot_be_changed(fleet_file) -> None:
    _, changes = _changes(fleet_file)
    app, _ = live_fleet_app(fleet_file, changes)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("7")
        app.view(HOSTS).table.move_cursor(row=2)
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, PublishForm)
        why = f"Cannot change ports on h3: h3 is not read ({H3_ERROR}): r reads it again"
        assert ("warning", why) in notifications(app)


# --------------------------------------------------------------------------- what another host's portscope reports


def test_a_remote_document_is_the_preview_and_a_refusal_its_one_line() -> None:
    request = PublishRequest("web", "0.0.0.0", None, 80)
    doc = {"action": "publish", "dry_run": True, "binding": "ps-1a2b3c4d", "host_port": 32771, "host": "h2",
           "added": ["-t nat -A PORTSCOPE-DNAT x"], "removed": [], "notes": ["n"], "warnings": ["w"]}  # fmt: skip
    shown = remote_report(request, RemoteChange("h2", 0, doc, ""))
    assert shown == Reported("ps-1a2b3c4d 0.0.0.0:32771/tcp → web:80 on h2", ("-t nat -A PORTSCOPE-DNAT x",), (),
                             ("w",), ("n",))  # fmt: skip
    text = str(preview_text(shown, "publish"))
    assert "would publish: ps-1a2b3c4d 0.0.0.0:32771/tcp → web:80 on h2" in text
    assert "+ -t nat -A PORTSCOPE-DNAT x" in text
    refused = RemoteChange("h2", 2, None, "h2: 0.0.0.0:8080/tcp is already published by docker")
    with pytest.raises(RemoteChangeError) as raised:
        remote_report(request, refused)
    assert str(raised.value) == "h2: 0.0.0.0:8080/tcp is already published by docker"


# --------------------------------------------------------------------------- the command line opens it


def test_the_command_line_opens_the_fleet_app(fleet_file, monkeypatch) -> None:
    opened: list[FleetApp] = []
    monkeypatch.setattr(FleetApp, "run", lambda self, **kwargs: opened.append(self))
    assert main(["--snapshot", str(fleet_file)]) == 0
    (app,) = opened
    assert (app.hosts, app.source, app.refresh_interval) == (list(FLEET), str(fleet_file), 0)
    assert [read.host for read in app.read_hosts(None)] == list(FLEET)
    opened.clear()
    assert main(["--host", "h1", "--host", "local", "--timeout", "5", "--refresh", "9"]) == 0
    (app,) = opened
    assert (app.hosts, app.source, app.refresh_interval, app.read_timeout) == (["h1", "local"], None, 9, 15)
    assert app.changes_for("local") is LOCAL
    remote = app.changes_for("h1").preview.__self__
    assert isinstance(remote, RemoteHost) and (remote.dest.text, remote.timeout, remote.sudo) == ("h1", 5, False)
