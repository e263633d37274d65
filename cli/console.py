"""The one place the CLI makes its Rich Console: styles only on a terminal, no colour under NO_COLOR.

- stdout a terminal: colours and styles (bold, dim).
- `NO_COLOR` set to any non-empty value (https://no-color.org): no colour; bold and dim stay, as the
  convention allows.
- stdout a pipe or a file: plain text, no escape sequence at all, unless `FORCE_COLOR` is non-empty
  (an explicit request, as in Rich and many other tools; NO_COLOR still removes the colours).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO

from rich.console import Console


def styled(stream: IO[str], environ: Mapping[str, str] | None = None) -> bool:
    """Whether output to `stream` gets escape sequences: a terminal, or FORCE_COLOR set."""
    env = os.environ if environ is None else environ
    if env.get("FORCE_COLOR", ""):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # a closed or unusual stream
        return False


def no_color(environ: Mapping[str, str] | None = None) -> bool:
    """NO_COLOR present and not empty (its value does not matter)."""
    env = os.environ if environ is None else environ
    return env.get("NO_COLOR", "") != ""


def make_console(file: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> Console:
    """A Console for `file` (stdout by default) that follows the rules in the module doc."""
    stream = sys.stdout if file is None else file
    on = styled(stream, environ)
    return Console(
        file=stream,
        force_terminal=on,  # decided here, not by Rich's own reading of the environment
        color_system="auto" if on else None,
        no_color=no_color(environ),
    )
