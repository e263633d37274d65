"""The TUI headless in the namespace it is started in, answering one question for a bench: when does a row
with this text appear (or disappear)? Runs whichever checkout's portscope is first on sys.path (so a
baseline checkout with its timer-driven refresh can be timed beside this one).

Protocol, one line each: `appear TEXT` / `vanish TEXT` -> `ok` at once, then `at MONOTONIC`: when the app first
showed a model that has (no longer has) a row containing TEXT; `quit`. Each model is scanned once, when it is
new, so the driver does not compete with the app for the interpreter while the app reads and analyses.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time

from portscope.tui.app import PortscopeApp

POLL = 0.01  # seconds between two looks for a new model


def shows(app: PortscopeApp, text: str) -> bool:
    model = app.model
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


async def main() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        while app.model is None:
            await pilot.pause(0.05)
        print("ready", flush=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if line in ("quit", ""):
                return
            verb, text = line.split(" ", 1)
            print("ok", flush=True)
            looked_at = None  # each model is scanned once, stamped when it was first seen: scanning every row
            while True:  # of a large host at each poll would compete with the app's own reads
                model = app.model
                if model is not looked_at:
                    looked_at, seen = model, time.monotonic()
                    if shows(app, text) == (verb == "appear"):
                        break
                await pilot.pause(POLL)
            print(f"at {seen:.4f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
