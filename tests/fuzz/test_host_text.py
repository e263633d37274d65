"""Host text is shown as text (issue 11, item 9): in the CLI's tables, findings and messages, and in the TUI.

Container, chain and process names, rule comments, warnings and the host name of a capture hold Rich
markup (`[/x]` once crashed `conflicts` with a MarkupError, `[blink]` rendered) and terminal
sequences (ESC bytes from rule comments reached the terminal). Each must appear literally, with its
control characters made visible, and nothing may crash.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from portscope.cli.render_table import print_bindings, print_findings
from portscope.core.printable import printable
from portscope.core.snapshot import read_capture
from tests.fuzz.cli_run import assert_clean, run_cli
from tests.fuzz.hostile import BLINK, CLOSE, HOSTILE, OSC, SGR, SHOWN, write_hostile_capture

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_RICH_SGR = re.compile(r"\x1b\[[0-9;]*m")
_CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # what Textual writes itself: colours, cursor moves


# --------------------------------------------------------------------------- the sanitiser itself


@given(st.text())
def test_printable_leaves_no_control_character_and_is_idempotent(text: str) -> None:
    shown = printable(text)
    assert not _CONTROLS.search(shown)
    assert printable(shown) == shown
    assert len(shown) >= len(text)


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_ascii_is_unchanged(text: str) -> None:
    assert printable(text) == text


@given(st.lists(st.text()))
def test_printable_keeps_only_the_newlines_it_is_told_to(parts: list[str]) -> None:
    text = "\n".join(parts)
    assert printable(text, newlines=True).count("\n") == text.count("\n")
    assert "\n" not in printable(text)


@given(st.text(), st.text())
def test_cli_findings_and_tables_show_any_host_text_literally(text: str, name: str) -> None:
    """Whatever a finding quotes, or a container is called, Rich prints exactly its visible form."""
    from portscope.core.findings import Finding
    from portscope.core.model import Binding

    out = io.StringIO()
    console = Console(file=out, width=100_000, color_system=None, soft_wrap=True)
    print_findings([Finding("k", "error", title=text, explanation=text, fix=text)], console)
    assert out.getvalue().splitlines()[1:3] == [" " * 8 + printable(text), " " * 8 + "fix: " + printable(text)]
    out.truncate(0)
    out.seek(0)
    binding = Binding(family="ipv4", protocol="tcp", host_ip="0.0.0.0", host_port=80, target_ip="10.0.0.2",
                      target_port=80, owner="docker", carriers=["dnat"], container_name=name or "-")  # fmt: skip
    print_bindings([binding], console)
    row = next(line for line in out.getvalue().splitlines() if "0.0.0.0:80/tcp" in line)
    assert f"│ {printable(name or '-')}" in row


# --------------------------------------------------------------------------- the CLI, as a subprocess


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hostile_capture(tmp_path_factory.mktemp("hostile") / "hostile.json")


@pytest.fixture(scope="module")
def hostile_dump(hostile: Path) -> Path:
    """The hostile capture's ipv4 iptables-save text, as a `--rules` dump."""
    doc = json.loads(hostile.read_text())
    text = next(s["text"] for s in doc["sources"] if s["family"] == "ipv4" and "*nat" in s["text"])
    path = hostile.with_name("hostile.save")
    path.write_text(text)
    return path


def _assert_shown(out: str, expected: tuple[str, ...], colour: bool) -> None:
    """Each hostile string in `expected` is in `out` as text; no control byte but Rich's own colours."""
    assert "\x07" not in out and "\x1b]" not in out and SGR not in out
    text = _RICH_SGR.sub("", out) if colour else out  # Rich's highlighter colours parts of the text
    assert "\x1b" not in text, out
    for h in expected:
        assert SHOWN[h] in text, f"{h!r} not shown as {SHOWN[h]!r}:\n{text}"


FORMS = {"plain": {}, "colour": {"FORCE_COLOR": "1", "TERM": "xterm-256color"}}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("command", "codes", "expected"),
    [
        ("list", {0}, HOSTILE),  # the four renamed containers
        ("conflicts", {0, 1}, HOSTILE),  # chain names, comments in rule text, process names
    ],
)
def test_cli_shows_host_text_of_a_capture_literally(
    hostile: Path, tmp_path: Path, command: str, codes: set[int], expected: tuple[str, ...], form: str
) -> None:
    result = run_cli([command, "--snapshot", str(hostile)], tmp_path, FORMS[form])
    assert_clean(result, codes)
    _assert_shown(result.out, expected, colour=form == "colour")
    _assert_shown(result.err, (OSC, CLOSE), colour=False)  # the capture's warning, on stderr


@pytest.mark.parametrize("form", FORMS)
def test_conflicts_on_a_dump_with_a_chain_named_close_tag(hostile_dump: Path, tmp_path: Path, form: str) -> None:
    """The issue's reproduction: a nat chain named `[/x]` crashed `conflicts` (MarkupError, exit 1)."""
    result = run_cli(["conflicts", "--rules", str(hostile_dump)], tmp_path, FORMS[form])
    assert_clean(result, {0, 1})
    _assert_shown(result.out, HOSTILE, colour=form == "colour")
    text = _RICH_SGR.sub("", result.out)
    assert f"nat/{CLOSE} #1" in text and f"nat/{BLINK} #1" in text


@pytest.mark.parametrize("command", ["list", "conflicts"])
def test_json_keeps_host_text_exact_and_escaped(hostile: Path, tmp_path: Path, command: str) -> None:
    result = run_cli([command, "--json", "--snapshot", str(hostile)], tmp_path)
    assert_clean(result, {0, 1})
    assert "\x1b" not in result.out and "\x07" not in result.out
    strings = "\n".join(_strings(json.loads(result.out)))
    assert SGR in strings and CLOSE in strings  # the data itself is kept exact; only its display is escaped


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    return [s for v in value for s in _strings(v)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- the TUI


SIZE = (220, 60)


def _screen(app) -> tuple[str, str]:
    """(the screen as plain text, the bytes a terminal would get) — as `export_screenshot` renders it."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)  # fmt: skip
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(clear=False), console.file.getvalue()


def _assert_screen(app, expected: tuple[str, ...]) -> None:
    text, terminal = _screen(app)
    for h in expected:
        assert SHOWN[h] in text, f"{h!r} not on screen as {SHOWN[h]!r}:\n{text}"
    assert "\x1b" not in text and "\x07" not in terminal and "\x1b]" not in terminal and SGR not in terminal
    assert "\x1b" not in _CSI.sub("", terminal), "a raw control reached the terminal"
    svg = app.export_screenshot()
    assert "\x1b" not in svg and "\x07" not in svg


async def _until(pilot, condition, tries: int = 500) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("condition never held")


async def _drive(path: Path) -> None:
    from portscope.tui.app import PortscopeApp
    from portscope.tui.widgets.detail_pane import DetailPane

    failing = {"n": 0}

    def load():
        failing["n"] += 1
        if failing["n"] > 1:  # the second read fails with host text in its message
            raise OSError(f"cannot read {CLOSE} {OSC}")
        return read_capture(str(path))

    app = PortscopeApp(load, refresh=0)
    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, lambda: app.reads >= 1 and not app.reading)
        await pilot.pause()
        _assert_screen(app, (BLINK, OSC, CLOSE))  # host name in the header; the warning banner
        seen: set[str] = set()
        for n, view in enumerate(("ports", "containers", "conflicts", "ephemeral", "listeners", "rules"), 1):
            await pilot.press(str(n))
            table = app.view(view).table
            for _ in range(min(table.row_count, 40)):
                detail = str(app.query_one(DetailPane).query_one("#detail-text").render())
                assert "\x1b" not in detail and "\x07" not in detail
                seen |= {h for h in HOSTILE if SHOWN[h] in detail}
                await pilot.press("down")
            _assert_screen(app, ())
        assert seen == set(HOSTILE), f"the detail pane never showed {set(HOSTILE) - seen}"
        # the Rules view: the full detail of a rule in the `[/x]` chain (its title is a border title), and a copy
        await pilot.press("6")
        table = app.view("rules").table
        key = next(k for k in table.shown_keys if f"/{CLOSE}/" in k)
        table.move_cursor(row=table.shown_keys.index(key))
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("c")  # notifies the rule text, which holds the SGR comment
        await pilot.pause()
        _assert_screen(app, (CLOSE, SGR))
        await pilot.press("escape")
        # the containers view: the detail screen of a container named `[/x]`
        await pilot.press("2")
        table = app.view("containers").table
        row = next(i for i, k in enumerate(table.shown_keys) if table.row_data(k).cells[1].text == CLOSE)
        table.move_cursor(row=row)
        await pilot.press("enter")
        await pilot.pause()
        _assert_screen(app, (CLOSE,))
        await pilot.press("escape")
        # the publish form: container names in the picker, and the notice of a failed read
        await pilot.press("a")
        await pilot.pause()
        await pilot.click("#container")
        await pilot.pause()
        _assert_screen(app, (CLOSE, BLINK, SGR, OSC))
        await pilot.press("escape", "escape")
        await pilot.press("r")
        await _until(pilot, lambda: app.reads >= 2 and not app.reading)
        await pilot.pause()
        _assert_screen(app, (CLOSE, OSC))  # the "Read failed" notice and the stale marker


def test_tui_shows_host_text_literally_everywhere(hostile: Path) -> None:
    asyncio.run(_drive(hostile))


def test_tui_sample_reads_unchanged_without_hostile_text() -> None:
    """The sanitiser leaves ordinary host text alone (the sample's cells are what they were)."""
    from portscope.tui.data import build_model

    model = build_model(read_capture(str(Path(__file__).resolve().parents[2] / "examples" / "sample.json")))
    assert any(c.text == "web" for r in model.rows["containers"] for c in r.cells)
