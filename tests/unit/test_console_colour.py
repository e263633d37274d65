"""Colour only on a terminal, none under NO_COLOR, plain text to a pipe (cli.console, the CLI's one Console)."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from portscope.cli.console import make_console

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.json"
ESC = "\x1b["
#: SGR parameters that set a colour: 30-39, 40-49, 90-97, 100-107 (38/48 take extended colours).
_COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _printed(file: io.StringIO, environ: dict[str, str]) -> str:
    make_console(file, environ).print("[bold red]error[/] [green]fix[/]")
    return file.getvalue()


def test_a_terminal_gets_colour() -> None:
    out = _printed(_Tty(), {"TERM": "xterm-256color"})
    assert _COLOUR.search(out), repr(out)


def test_no_color_any_non_empty_value_removes_colour_on_a_terminal() -> None:
    for value in ("1", "0", "no", "anything"):
        out = _printed(_Tty(), {"TERM": "xterm-256color", "NO_COLOR": value})
        assert "error fix" in re.sub(r"\x1b\[[0-9;]*m", "", out)
        assert not _COLOUR.search(out), (value, repr(out))


def test_an_empty_no_color_is_ignored() -> None:
    assert _COLOUR.search(_printed(_Tty(), {"TERM": "xterm-256color", "NO_COLOR": ""}))


def test_a_pipe_gets_plain_text() -> None:
    assert _printed(io.StringIO(), {"TERM": "xterm-256color"}) == "error fix\n"


def test_a_pipe_is_plain_even_when_rich_would_read_its_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich reads this one itself; the decision is cli.console's
    file = io.StringIO()
    make_console(file).print("[red]x[/]")
    assert file.getvalue() == "x\n"


def test_force_color_is_an_explicit_request() -> None:
    assert ESC in _printed(io.StringIO(), {"TERM": "xterm-256color", "FORCE_COLOR": "1"})


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(TERM="xterm-256color", COLUMNS="120", PYTHONPATH=str(ROOT), **extra)
    return env


def _through_pty(argv: list[str], env: dict[str, str]) -> str:
    """Run argv with stdout on a pseudo-terminal; what it printed."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    return b"".join(chunks).decode()


_CONFLICTS = [sys.executable, "-m", "portscope", "conflicts", "--snapshot", str(SAMPLE)]
_LIST = [sys.executable, "-m", "portscope", "list", "--snapshot", str(SAMPLE)]


@pytest.mark.skipif(not SAMPLE.exists(), reason="examples/sample.json is missing")
def test_conflicts_on_a_terminal_is_coloured() -> None:
    assert _COLOUR.search(_through_pty(_CONFLICTS, _env()))


@pytest.mark.skipif(not SAMPLE.exists(), reason="examples/sample.json is missing")
@pytest.mark.parametrize("argv", [_CONFLICTS, _LIST], ids=["conflicts", "list"])
def test_no_color_on_a_terminal(argv: list[str]) -> None:
    out = _through_pty(argv, _env(NO_COLOR="1"))
    assert out.strip()
    assert not _COLOUR.search(out), out[:400]


@pytest.mark.skipif(not SAMPLE.exists(), reason="examples/sample.json is missing")
@pytest.mark.parametrize("argv", [_CONFLICTS, _LIST], ids=["conflicts", "list"])
def test_a_pipe_gets_no_escape_sequence(argv: list[str]) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60).stdout
    assert out.strip()
    assert "\x1b" not in out
