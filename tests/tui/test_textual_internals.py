"""The Textual internals portscope relies on, named in one place: an upgrade that drops one fails here.

`tui/widgets/keyed_table.py` is the one module of the TUI that uses them (`DATA_TABLE_INTERNALS` and
`TwoWayDict`); the tests reach two more (`App._notifications`, `Select._options`) through `tests/tui/conftest.py`.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from textual._two_way_dict import TwoWayDict
from textual.app import App
from textual.widgets import DataTable, Select

from portscope.tui.cells import Column
from portscope.tui.widgets import keyed_table
from portscope.tui.widgets.keyed_table import DATA_TABLE_INTERNALS, KeyedTable
from tests.tui.conftest import notifications, select_options

TUI = Path(__file__).resolve().parents[2] / "tui"


def test_data_table_has_every_internal_keyed_table_uses() -> None:
    table = DataTable()
    missing = [name for name in DATA_TABLE_INTERNALS if not hasattr(table, name)]
    assert missing == []
    assert isinstance(table._data, dict) and isinstance(table._row_locations, TwoWayDict)
    assert isinstance(table._new_rows, set) and isinstance(table._updated_cells, set)
    assert isinstance(table._update_count, int) and isinstance(table._require_update_dimensions, bool)
    assert isinstance(table._total_row_height, int)
    assert list(inspect.signature(DataTable._highlight_cursor).parameters) == ["self"]
    # The two methods KeyedTable overrides must still be DataTable's, with the same parameters.
    assert list(inspect.signature(DataTable._update_column_widths).parameters) == ["self", "updated_cells"]
    assert list(inspect.signature(DataTable._update_dimensions).parameters) == ["self", "new_rows"]


def test_two_way_dict_works_as_keyed_table_uses_it() -> None:
    locations = TwoWayDict({"a": 0, "b": 1})
    assert locations.get("b") == 1 and locations.get_key(0) == "a" and locations.get_key(5) is None


def test_keyed_table_names_of_its_own_are_not_data_tables() -> None:
    """KeyedTable's private attributes and methods must not shadow a DataTable internal of the same name."""
    base = set(dir(DataTable)) | set(vars(DataTable()))
    body = ast.parse(inspect.getsource(KeyedTable)).body[0]
    own = {n.name for n in ast.iter_child_nodes(body) if isinstance(n, ast.FunctionDef) and _private(n.name)}
    own |= {n for n in vars(KeyedTable([Column("a", "A")])) if n.startswith("_")} - set(vars(DataTable()))
    shadowed = (own & base) - set(DATA_TABLE_INTERNALS)
    assert own and shadowed == set()


def test_the_test_helpers_internals_exist() -> None:
    app = App()
    assert notifications(app) == []
    assert select_options(Select([("x", 1), ("y", 2)], allow_blank=False)) == [("x", 1), ("y", 2)]


def test_no_other_tui_module_uses_textual_internals() -> None:
    """Private Textual imports, and `_names` portscope does not define itself, only in keyed_table."""
    paths = [p for p in sorted(TUI.rglob("*.py")) if p != Path(keyed_table.__file__).resolve()]
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in paths}
    own = {name for tree in trees.values() for name in _defined_private_names(tree)}
    offenders = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("textual"):
                names = [node.module or "", *(a.name for a in node.names)]
                if any(part.startswith("_") for name in names for part in name.split(".")):
                    offenders.append(f"{path.name}:{node.lineno} imports {node.module}")
            elif isinstance(node, ast.Attribute) and _private(node.attr) and not _ours(node, own):
                offenders.append(f"{path.name}:{node.lineno} reads .{node.attr}")
    assert offenders == []


def _ours(node: ast.Attribute, own: set[str]) -> bool:
    """A private name portscope defines, or `os._exit` (the standard library's)."""
    return node.attr in own or (isinstance(node.value, ast.Name) and node.value.id == "os")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_private_names(tree: ast.AST) -> set[str]:
    """`_names` portscope's code defines: its functions and methods, and attributes it assigns."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(
                sub.attr for target in targets for sub in ast.walk(target)
                if isinstance(sub, ast.Attribute) and _private(sub.attr)
            )  # fmt: skip
    return names
