"""Runs the fleet TUI headless in a fleet's client namespace, driven line by line from the test (stdin/stdout).

Started with `nsenter --net=CLIENT python -m tests.integration.fleet_app_driver HOST...` in the fleet's client
environment (PORTSCOPE_SSH_COMMAND, XDG_RUNTIME_DIR), the app reads the hosts over ssh and changes them with
portscope run there, wired as `portscope --host HOST...` wires it (tui.fleet_app.live_reader / live_changes).
It refreshes only on request (`refresh=0`). Every command answers one JSON line:

- `hosts`: `7`, then the Hosts view's rows, {host: {column label: text}};
- `ports HOST`: `1`, then HOST's rows of the Ports view as shown (its filter too), [{column label: text}];
- `publish HOST CONTAINER HOST_PORT CONTAINER_PORT`: in Containers, `/host:HOST CONTAINER` enter, `a`, all
  addresses chosen in the host address list and the ports typed, the dry run awaited, enter; then the read of
  that host awaited: {"preview", "notices", "screen"};
- `unpublish HOST PORT`: in Ports, `/host:HOST :PORT/` enter, `x`, the dry run awaited, `y`, the read awaited;
- `quit`.
A step that does not happen within BOUND seconds answers {"error": ...} (the test fails on it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from portscope.core.fleet.destinations import destinations
from portscope.tui.fleet_app import FleetApp, live_changes, live_reader
from portscope.tui.fleet_model import fleet_columns
from portscope.tui.screens.confirm_change import ConfirmChange
from portscope.tui.screens.publish_form import PublishForm

#: How long a step may take before the driver reports it did not happen (a bound, not a goal).
BOUND = 120.0
TIMEOUT = 60.0  # each host's read and change


class StepFailed(Exception):
    """A step did not happen within BOUND seconds."""


async def until(pilot: Pilot, what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise StepFailed(what)
        await pilot.pause(0.05)


def rows(app: FleetApp, view: str, host: str | None = None) -> list[dict[str, str]]:
    labels = [c.label for c in fleet_columns(view)]
    table = app.view(view).table
    out = []
    for key in table.shown_keys:
        row = table.row_data(key)
        if row is not None and (host is None or row.host == host):
            out.append(dict(zip(labels, (c.text for c in row.cells), strict=True)))
    return out


def notices(app: FleetApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]  # pinned by tests/tui/test_textual_internals.py


async def settled(pilot: Pilot, app: FleetApp, reads: int) -> None:
    """Until the app has finished more than `reads` reads."""
    await until(pilot, "the host was not read again", lambda: app.reads > reads and not app.reading)
    await pilot.pause()


async def filtered(pilot: Pilot, view_key: str, text: str) -> None:
    """Switch view, then `/TEXT` enter: the cursor lands on the first row left."""
    await pilot.press(view_key, "slash", *text, "enter")
    await pilot.pause()


async def publish(pilot: Pilot, app: FleetApp, host: str, container: str, host_port: str, port: str) -> dict:
    await filtered(pilot, "2", f"host:{host} {container}")
    if len(app.view("containers").table.shown_keys) != 1:
        raise StepFailed(f"{container} on {host} is not the one row left: {rows(app, 'containers')}")
    await pilot.press("a")
    await until(pilot, "no publish form", lambda: isinstance(app.screen, PublishForm))
    form = app.screen
    assert isinstance(form, PublishForm)
    form.query_one("#host-ip", Select).focus()
    await pilot.press("enter")  # the list opens on the current choice (127.0.0.1); all addresses is first
    await pilot.press("home", "enter")
    await until(pilot, "all addresses not chosen", lambda: form.query_one("#host-ip", Select).value == "0.0.0.0")
    for field, text in (("host-port", host_port), ("container-port", port)):
        form.query_one(f"#{field}", Input).focus()
        await pilot.press(*text)
    request = form.checked.request
    await until(pilot, "no dry run shown", lambda: form.shown and form.previewed == form.checked.request)
    preview = str(form.query_one("#preview", Static).render())
    reads = app.reads
    await pilot.press("enter")
    await until(pilot, "the form did not close", lambda: not isinstance(app.screen, PublishForm))
    await settled(pilot, app, reads)
    return {"request": str(request), "preview": preview, "notices": notices(app)}


async def unpublish(pilot: Pilot, app: FleetApp, host: str, port: str) -> dict:
    await filtered(pilot, "1", f"host:{host} :{port}/")
    if len(app.view("ports").table.shown_keys) != 1:
        raise StepFailed(f"port {port} on {host} is not the one row left: {rows(app, 'ports')}")
    await pilot.press("x")
    await until(pilot, "no confirmation", lambda: isinstance(app.screen, ConfirmChange))
    screen = app.screen
    assert isinstance(screen, ConfirmChange)
    await until(pilot, "no dry run shown", lambda: screen.ready)
    preview = str(screen.query_one("#change-preview", Static).render())
    reads = app.reads
    await pilot.press("y")
    await until(pilot, "the confirmation did not close", lambda: not isinstance(app.screen, ConfirmChange))
    await settled(pilot, app, reads)
    return {"action": screen.change.action if screen.change else None, "preview": preview, "notices": notices(app)}


async def main(hosts: list[str]) -> None:
    dests = destinations(hosts)
    app = FleetApp(
        live_reader(dests, timeout=TIMEOUT, sudo=False), hosts, refresh=0, read_timeout=TIMEOUT + 30,
        changes=live_changes(dests, timeout=TIMEOUT, sudo=False),
    )  # fmt: skip
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, "no first read", lambda: app.reads >= 1 and not app.reading)
        print(json.dumps({"ready": app.reads}), flush=True)
        while True:
            words = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not words or words[0] == "quit":
                break
            try:
                if words[0] == "hosts":
                    await pilot.press("7")
                    answer: object = {r["HOST"]: r for r in rows(app, "hosts")}
                elif words[0] == "ports":
                    await pilot.press("1")
                    answer = rows(app, "ports", words[1])
                elif words[0] == "publish":
                    answer = await publish(pilot, app, *words[1:5])
                elif words[0] == "unpublish":
                    answer = await unpublish(pilot, app, *words[1:3])
                else:
                    answer = {"error": f"unknown command {words[0]}"}
            except StepFailed as exc:
                answer = {"error": str(exc), "notices": notices(app)}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
