"""`portscope` / `portscope tui` reach the app lazily; every key binding has an id and a tooltip."""

from __future__ import annotations

import subprocess
import sys

import pytest
from textual.binding import Binding

from portscope.cli.main import _default_to_tui, main


def test_no_command_means_the_tui() -> None:
    assert _default_to_tui([]) == ["tui"]
    assert _default_to_tui(["--snapshot", "x.json"]) == ["tui", "--snapshot", "x.json"]
    assert _default_to_tui(["--help"]) == ["--help"]
    assert _default_to_tui(["list", "--json"]) == ["list", "--json"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], (None, None)),
        (["--snapshot", "s.json"], ("s.json", None)),
        (["tui", "--refresh", "0"], (None, 0.0)),
        (["tui", "--snapshot", "s.json", "--refresh", "2.5"], ("s.json", 2.5)),
    ],
)
def test_tui_options_reach_run_app(monkeypatch, argv, expected) -> None:
    import portscope.tui.app

    seen = []
    monkeypatch.setattr(
        portscope.tui.app, "run_app", lambda snapshot=None, refresh=None: seen.append((snapshot, refresh)) or 0
    )
    assert main(argv) == 0
    assert seen == [expected]


def test_negative_refresh_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tui", "--refresh", "-1"])
    assert exc.value.code == 2
    assert "must be 0" in capsys.readouterr().err


def test_list_json_still_never_imports_textual() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from portscope.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['list', '--json', '--snapshot', 'examples/sample.json'])\n"
        "print('textual' in sys.modules, 'portscope.tui' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_binding_has_an_id_and_a_tooltip() -> None:
    from portscope.tui.app import VIEW_CLASSES, PortscopeApp
    from portscope.tui.screens.detail import DetailScreen
    from portscope.tui.screens.help import HelpScreen
    from portscope.tui.widgets.filter_bar import FilterBar
    from portscope.tui.widgets.keyed_table import KeyedTable
    from portscope.tui.widgets.table_view import TableView

    classes = [PortscopeApp, KeyedTable, TableView, *VIEW_CLASSES, FilterBar, DetailScreen, HelpScreen]
    seen = 0
    for cls in classes:
        for binding in Binding.make_bindings(cls.__dict__.get("BINDINGS", [])):
            assert binding.id and binding.tooltip, (cls.__name__, binding.key)
            seen += 1
    assert seen >= 25
