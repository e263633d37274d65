"""The publish commands' CLI edge: exit statuses and one-line errors before anything is read, lean imports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from portscope.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    "argv",
    [
        ["publish", "web", "8080:80"],
        ["unpublish", "8080"],
        ["block", "8080"],
        ["unblock", "ps-1a2b3c4d"],
        ["apply"],
        ["reconcile"],
        ["status"],
        ["watch"],
    ],
)
def test_not_root_exits_4(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(argv) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "root" in err[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["publish", "web", "0"], "1-65535"),
        (["publish", "web", "80", "--reason", "a\nb"], "--reason"),
        (["publish", "a'b", "80"], "container"),
        (["unpublish", "80/icmp"], "protocol"),
    ],
)
def test_bad_input_exits_2_before_needing_root(
    argv: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_list_does_not_import_the_publish_package() -> None:
    code = (
        "import sys\nimport portscope.cli.main\n"
        "print(any(m.startswith('portscope.core.publish') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_core_publish_does_not_import_textual() -> None:
    code = (
        "import sys\nimport portscope.core.publish.ops, portscope.core.publish.maintain, portscope.core.publish.watch\n"
        "print('textual' in sys.modules, 'portscope.tui' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
