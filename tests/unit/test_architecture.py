"""Layering: core/ never imports Textual, the TUI or the CLI; the CLI's list path stays lean."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _imports(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_textual_tui_or_cli() -> None:
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, "core")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                bad = _imports(path) & {"textual", "tui", "cli"}
                if bad:
                    offenders.append((os.path.relpath(path, ROOT), sorted(bad)))
    assert offenders == []


def test_import_linter_contract_holds() -> None:
    linter = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    result = subprocess.run([linter], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_list_on_a_dump_imports_neither_textual_nor_docker() -> None:
    """`portscope list --json` with no Docker socket must not pay for Textual or the Docker SDK."""
    dump = os.path.join(ROOT, "tests", "fixtures", "iptables", "nft-v4.save")
    code = (
        "import sys, io, contextlib\n"
        "from portscope.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['list', '--json', '--rules', {dump!r}])\n"
        "print(rc, 'textual' in sys.modules, 'docker' in sys.modules, 'rich' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "False", "False", "False"]
