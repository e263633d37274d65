"""The TUI headless in the namespace it is started in, answering one question for a bench: when does a row
with this text appear (or disappear)? Runs whichever checkout's portscope is first on sys.path (so a
baseline checkout with its timer-driven refresh can be timed beside this one).

Protocol, one line each: `appear TEXT` / `vanish TEXT` -> `ok` at once, then `at MONOTONIC`: when the app first
showed a model that has (no longer has) a row containing TEXT; `quit`. Each model is scanned once, when the app
has shown it (the driver wraps `apply` rather than polling), so the driver does not compete with the app for the
interpreter while the app reads and analyses.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time

from portscope.tui.app import PortscopeApp
from portscope.tui.data import Model


def shows(model: Model | None, text: str) -> bool:
    if model is None:
        return False
    return any(text in row.key or any(text in cell.text for cell in row.cells) for rows in model.rows.values()
               for row in rows)  # fmt: skip


def make_app() -> PortscopeApp:
    if "feed" in inspect.signature(PortscopeApp.__init__).parameters:
        from portscope.core.changes.feed import LiveFeed

        feed = LiveFeed()
        return PortscopeApp(feed.read, refresh=60.0, feed=feed)
    from portscope.core.live import read_live

    return PortscopeApp(read_live, refresh=5.0)


def follow(app: PortscopeApp) -> asyncio.Queue[tuple[Model, float]]:
    """Each new model with the moment it has been handed to the views (`apply` returned), queued without polling:
    a look every few milliseconds takes the interpreter from the app's worker often enough to slow its analysis
    by a fifth at 10,000 ports."""
    shown: asyncio.Queue[tuple[Model, float]] = asyncio.Queue()
    apply = app.apply

    def stamped(model: Model) -> None:
        apply(model)
        shown.put_nowait((model, time.monotonic()))

    app.apply = stamped  # type: ignore[method-assign]
    return shown


async def main() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        while app.model is None:
            await pilot.pause(0.05)
        shown = follow(app)
        print("ready", flush=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if line in ("quit", ""):
                return
            verb, text = line.split(" ", 1)
            while not shown.empty():
                shown.get_nowait()
            print("ok", flush=True)
            model, seen = app.model, time.monotonic()  # each model is scanned once, when it is shown
            while shows(model, text) != (verb == "appear"):
                model, seen = await shown.get()
            print(f"at {seen:.4f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
