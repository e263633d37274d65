"""Runs the TUI headless inside a sandbox namespace, driven line by line from the test (stdin/stdout).

Started with `nsenter --net=NS python -m tests.integration.live_app_driver`, so the app, its reads and
its watcher (nf_tables' generation, the engine's events, sock_diag) all live in that namespace. The app follows
changes only (`refresh=0`: no timer): when the test says `sync` after changing the host, this waits
until the app's model equals a fresh full read of the host, and prints `synced READS` — or `differs
...` when it has not happened within the bound (which fails the test).
Commands: `sync`, `quit`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from portscope.core.changes.feed import LiveFeed
from portscope.core.live import read_live
from portscope.tui.app import PortscopeApp
from portscope.tui.data import Model, build_model

#: How long `sync` waits for the app to catch up before it reports a difference (a bound, not a goal).
BOUND = 60.0


def projection(model: Model) -> dict[str, list[list[str]]]:
    """Every view's rows, as text, in key order: what the user sees."""
    return {
        view: sorted([row.key, *(cell.text for cell in row.cells)] for row in rows) for view, rows in model.rows.items()
    }


def first_difference(a: dict[str, list[list[str]]], b: dict[str, list[list[str]]]) -> str:
    for view in sorted(set(a) | set(b)):
        left, right = a.get(view, []), b.get(view, [])
        if left != right:
            only_app = [r for r in left if r not in right][:3]
            only_fresh = [r for r in right if r not in left][:3]
            return json.dumps({"view": view, "app": only_app, "fresh": only_fresh})
    return "none"


async def main() -> None:
    feed = LiveFeed()
    app = PortscopeApp(feed.read, refresh=0, feed=feed)
    async with app.run_test(size=(120, 36)) as pilot:
        while app.model is None:
            await pilot.pause(0.05)
        print(f"ready {' | '.join(app.watching or []) or 'watching'}", flush=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if line in ("quit", ""):
                break
            if line == "sync":
                fresh = projection(build_model(read_live()))
                deadline = time.monotonic() + BOUND
                while True:
                    model = app.model
                    seen = projection(model) if model is not None and not app.reading else None
                    if seen == fresh:
                        print(f"synced {app.reads}", flush=True)
                        break
                    if time.monotonic() > deadline:
                        print(f"differs {first_difference(seen or {}, fresh)}", flush=True)
                        break
                    await pilot.pause(0.05)


if __name__ == "__main__":
    asyncio.run(main())
