"""Host text for Textual widgets: a Rich `Text`, never markup, with its control characters shown.

Textual parses a plain `str` given to `Static`, `Label`, a border title, a `Select` option or a
notification as markup: a container named `[/x]` would crash it, `[blink]x` would blink. Every
string that holds host text goes to a widget through `literal`.
"""

from __future__ import annotations

from rich.text import Text

from portscope.core.printable import printable


def literal(text: object, style: str = "") -> Text:
    """`text` as it is (markup not parsed; ESC and other controls made visible), in `style`."""
    return Text(printable(text), style=style)


def literal_lines(text: object, style: str = "") -> Text:
    """Like `literal`, keeping the line breaks `text` means to have."""
    return Text(printable(text, newlines=True), style=style)
