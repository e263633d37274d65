"""The command palette (ctrl+p): every view and every action of portscope."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from portscope.tui.data import TITLES, VIEWS


class PortscopeCommands(Provider):
    """Views ("Show Conflicts") and actions ("Refresh now", "Pause live refresh", …)."""

    def commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = self.app

        def run(action: str, *args: str) -> Callable[[], object]:
            return partial(getattr(app, f"action_{action}"), *args)

        views = [(cls.VIEW, cls.view_title()) for cls in getattr(app, "view_classes", ())] or [
            (v, TITLES[v]) for v in VIEWS
        ]
        out: list[tuple[str, Callable[[], object], str]] = [
            (f"Show {title}", run("show_view", v), f"Switch to the {title} view") for v, title in views
        ]
        paused = getattr(app, "paused", False)
        out += [
            ("Refresh now", run("refresh"), "Read the host (or the capture) again"),
            ("Resume live refresh" if paused else "Pause live refresh", run("pause"),
             "Stop or restart the periodic read"),
            ("Filter the current view", run("filter"), "Type to keep matching rows (port, container, …)"),
            ("Clear the filter", run("clear_filter"), "Show every row of the current view"),
            ("Show details", run("details"), "The selected row's evidence, full screen"),
            ("Toggle the detail pane", run("toggle_detail"), "Hide or show the pane under the table"),
            ("Copy", run("copy"), "Copy the selected finding's fix (or the row's identifier)"),
            ("Sort by the next column", run("sort_next"), "Cycle the sort column of the current view"),
            ("Reverse the sort", run("sort_reverse"), "Flip ascending / descending"),
            ("Rules behind the selected binding", run("goto_rules"), "Open Rules at the first marked rule"),
            ("Keys", run("help"), "Every key and what it does"),
        ]  # fmt: skip
        return out

    async def discover(self) -> Hits:
        for name, command, help_text in self.commands():
            yield DiscoveryHit(name, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, command, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)
