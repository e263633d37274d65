"""Pilot tests on the sample capture: every view, filtering, sorting, details, copy, help, palette, mouse."""

from __future__ import annotations

from textual.widgets import TabbedContent

from portscope.core.snapshot import read_capture
from portscope.tui.data import COLUMNS, TITLES, VIEWS, build_model
from portscope.tui.screens.detail import DetailScreen
from portscope.tui.screens.help import HelpScreen
from portscope.tui.widgets.banner import Banner
from portscope.tui.widgets.detail_pane import DetailPane
from portscope.tui.widgets.status_line import StatusLine
from tests.tui.conftest import SAMPLE, SIZE, capture_app, live_app, loaded, non_root, wait_until


def _label(app, view: str) -> str:
    return str(app.query_one(TabbedContent).get_tab(view).label)


def _cell(row, column: str) -> str:
    """The text of a Ports row's cell in `column` (by key: columns may be added)."""
    return row.cells[[c.key for c in COLUMNS["ports"]].index(column)].text


def _detail(app) -> str:
    return str(app.query_one("#detail-text").render())


async def test_every_view_shows_the_sample_with_counts_in_its_tab() -> None:
    app = capture_app()
    model = build_model(read_capture(str(SAMPLE)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for n, view in enumerate(VIEWS, start=1):
            await pilot.press(str(n))
            assert app.query_one(TabbedContent).active == view
            table = app.view(view).table
            assert table.row_count == model.count(view) > 0
            assert sorted(table.shown_keys) == sorted(r.key for r in model.rows[view])
            assert _label(app, view) == f"{TITLES[view]} {model.count(view)}"
            assert app.focused is table


async def test_ports_mark_conflicts_inline() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        ports = app.view("ports").table
        row = ports.row_data("ipv4/tcp/0.0.0.0:2222->10.99.0.5:22")
        assert row is not None
        assert row.cells[0].text == "✖"
        assert "shadowed-listener" in _cell(row, "issues")
        calm = ports.row_data("ipv4/udp/0.0.0.0:5353->172.17.0.3:53")
        assert calm is not None and calm.cells[0].text == "" and _cell(calm, "issues") == ""
        assert _cell(calm, "reach") == ""  # reached from everywhere: nothing to say


async def test_header_line_and_no_banner_for_root() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        status = str(app.query_one(StatusLine).render())
        for part in ("vm", "iptables-nft 43 rules", "Docker 20.10.24", "root", "2026-11-27 22:30:56 UTC",
                     "capture sample.json"):  # fmt: skip
            assert part in status
        assert not app.query_one(Banner).display


async def test_non_root_gets_a_banner_saying_what_is_hidden(sample) -> None:
    app = live_app(lambda: non_root(sample))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        banner = app.query_one(Banner)
        assert banner.display
        assert "firewall rules and other users' processes are hidden" in str(banner.render())
        assert "not root" in str(app.query_one(StatusLine).render())


async def test_filter_as_you_type_then_escape_clears() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", "2", "2", "2", "2")
        table = app.view("ports").table
        assert table.row_count == 1  # the second 2222 DNAT is dead (first match): not a published port
        assert _label(app, "ports") == "Ports 1/7"
        await pilot.press("enter")
        assert app.focused is table and table.row_count == 1
        await pilot.press("escape")
        assert table.row_count == 7
        assert _label(app, "ports") == "Ports 7"


async def test_filter_matches_container_address_and_process_and_is_per_view() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"blank", "enter")
        assert app.view("ports").table.row_count == 2
        await pilot.press("5", "slash", *"python3", "enter")
        assert app.view("listeners").table.row_count == 2
        await pilot.press("escape", "slash", *"127.0.0.1", "enter")
        assert {k.split("/")[2] for k in app.view("listeners").table.shown_keys} == {
            "127.0.0.1:2222",
            "127.0.0.1:9000",
            "127.0.0.1:45000",
        }
        await pilot.press("1")
        assert app.view("ports").table.row_count == 2  # the Ports filter stayed


async def test_sort_by_key_and_by_header_click() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = app.view("ports").table
        default = table.shown_keys
        await pilot.press("s")  # by the first column: the conflict mark, errors first
        assert table.sort_column == "mark"
        marks = [table.row_data(k).cells[0].text for k in table.shown_keys]
        assert marks[:4] == ["✖", "✖", "▲", ""]  # 2222 (shadowed-listener), 9000 (loopback-reachable), 40000
        await pilot.press("S")
        assert table.sort_reverse
        assert [table.row_data(k).cells[0].text for k in table.shown_keys][-1] == "✖"
        await pilot.click("#ports-table", offset=(50, 0))  # the CONTAINER header
        assert table.sort_column == "container" and not table.sort_reverse
        names = [table.row_data(k).cells[3].text for k in table.shown_keys]
        assert names == sorted(names, key=str.casefold)
        for _ in range(len(table.spec) - 3):
            await pilot.press("s")
        assert table.sort_column is None and table.shown_keys == default


async def test_sort_keeps_the_selected_row() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = app.view("ports").table
        await pilot.press("down", "down", "down")
        chosen = table.selected_key
        await pilot.press("s", "s", "S")
        assert table.selected_key == chosen


async def test_detail_pane_follows_the_cursor_and_enter_opens_the_full_detail() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = app.view("ports").table
        await pilot.press("down")
        key = table.selected_key
        await pilot.pause()
        assert key is not None and key in _detail(app)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        assert "Rules (" in str(app.screen.text) and "-A PREROUTING" in str(app.screen.text)
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_conflicts_show_fix_and_c_copies_it() -> None:
    app = capture_app()
    model = build_model(read_capture(str(SAMPLE)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("3")
        table = app.view("conflicts").table
        first = model.conflicts[table.selected_key]
        assert first.severity == "error"
        await pilot.pause()
        text = _detail(app)
        assert first.explanation[:40] in text and first.fix in text
        await pilot.press("c")
        assert app.clipboard == first.fix
        await pilot.press("down", "enter")
        second = model.conflicts[table.selected_key]
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("c")
        assert app.clipboard == second.fix


async def test_ephemeral_view_shows_range_fill_and_next_ports() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("4")
        text = str(app.query_one("#range-text").render())
        assert "32768-60999" in text and "in use" in text
        assert "32770" in str(app.query_one("#range-next").render())
        bar = app.query_one("#range-fill")
        assert bar.total == 28232 and bar.progress == app.model.ephemeral.used_ports
        whats = {app.view("ephemeral").table.row_data(k).cells[0].text for k in app.view("ephemeral").table.shown_keys}
        assert whats == {"docker", "published", "listener", "outbound"}


async def test_rules_of_the_selected_binding_are_highlighted() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        ports = app.view("ports").table
        await pilot.press("down", "down", "down")  # 127.0.0.1:9000 (api), after 2222, 5353 and 8080
        key = ports.selected_key
        assert key is not None and "9000" in key
        expected = app.model.binding_rules[key]
        await pilot.press("g")
        rules = app.view("rules").table
        assert app.query_one(TabbedContent).active == "rules"
        marked = {k for k in rules.shown_keys if rules.row_data(k).cells[0].text == "▶"}
        assert marked == set(expected) and len(marked) == 3
        assert rules.selected_key in expected
        first = rules.selected_key
        await pilot.press("n")
        assert rules.selected_key in expected and rules.selected_key != first


async def test_help_lists_every_key() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {(title, action) for title, rows in app.screen.sections for _, action, _ in rows}
        actions = {action for _, action in listed}
        for wanted in ("Quit", "Help", "Filter", "Refresh", "Pause", "Details", "Sort", "Reverse", "Copy fix",
                       "Its rules", "Next ▶", "Command palette", "Clear filter", "Close"):  # fmt: skip
            assert wanted in actions, wanted
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_palette_offers_views_and_actions() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"show rules")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.query_one(TabbedContent).active == "rules")
        await pilot.press("ctrl+p", *"pause live", "_")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "rules"


async def test_footer_shows_the_current_views_keys() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)

        def ids() -> set[str | None]:
            return {b.binding.id for b in app.screen.active_bindings.values() if b.binding.show}

        assert {"ports-copy", "goto-rules", "details", "sort", "refresh", "pause", "filter", "help"} <= ids()
        await pilot.press("3")
        assert "copy-fix" in ids() and "goto-rules" not in ids()
        await pilot.press("6")
        assert "next-marked" in ids()


async def test_mouse_switches_tabs_and_selects_rows() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.click("#--content-tab-conflicts")
        assert app.query_one(TabbedContent).active == "conflicts"
        table = app.view("conflicts").table
        await pilot.click("#conflicts-table", offset=(5, 3))  # header is row 0: the third finding
        assert table.cursor_row == 2
        await pilot.click("#conflicts-table", offset=(5, 3))  # again: the full detail
        assert isinstance(app.screen, DetailScreen)


async def test_detail_pane_toggles() -> None:
    app = capture_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        pane = app.query_one(DetailPane)
        await pilot.press("d")
        assert not pane.display
        await pilot.press("d")
        assert pane.display
