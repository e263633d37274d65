"""A banner that tells a user what this read could not see, and why (not root, unreadable backends)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from portscope.core.printable import printable


class Banner(Static):
    """Hidden when there is nothing to say."""

    def show(self, lines: list[str]) -> None:
        text = Text()
        for n, line in enumerate(lines):
            text.append("\n" if n else "")
            text.append("⚠ ", style="bold")
            text.append(printable(line))
        self.update(text)
        self.display = bool(lines)
