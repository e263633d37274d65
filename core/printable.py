"""Host text made safe for a terminal: control characters shown, never sent.

Chain names, rule comments, process names and command lines, container names and labels come
from the host (or a file) and may hold ESC sequences, bells or bidi overrides that a terminal
would obey. `printable` replaces each with a visible stand-in: a C0 control or DEL with its
Unicode control picture (ESC → ␛), a C1 control or a bidi control with its `\\x..`/`\\u....` escape.
Markup (Rich's `[bold]`) is a separate concern: the CLI escapes it, the TUI never parses it.
"""

from __future__ import annotations

_PICTURES = {c: 0x2400 + c for c in range(0x20)} | {0x7F: 0x2421}  # ␀ … ␟, ␡
_ESCAPED = {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)} | {
    c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, *range(0x2028, 0x202F), *range(0x2066, 0x206A))
}
_TABLE: dict[int, int | str] = {**_PICTURES, **_ESCAPED}
_KEEP_NEWLINE: dict[int, int | str] = {k: v for k, v in _TABLE.items() if k != 0x0A}


def printable(text: object, *, newlines: bool = False) -> str:
    """`text` as a string with every control character replaced by a visible form.

    `newlines=True` keeps `\\n` (for text whose line breaks are meant); everything else that a
    terminal would act on (ESC, BEL, CR, TAB, C1 controls, bidi overrides) is shown instead.
    """
    s = text if isinstance(text, str) else str(text)
    if s.isascii() and s.isprintable():  # the common case, checked in C
        return s
    return s.translate(_KEEP_NEWLINE if newlines else _TABLE)
