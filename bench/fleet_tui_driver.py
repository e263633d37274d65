"""The fleet TUI headless in a fleet's client namespace, timing how it answers while the hosts arrive.

Started by bench/fleet_read.py as `nsenter --net=CLIENT python -m bench.fleet_tui_driver [options] HOST...` in
the fleet's client environment (PORTSCOPE_SSH_COMMAND, XDG_RUNTIME_DIR). The app is `FleetApp` wired as
`portscope --host HOST...` wires it (tui.fleet_app.live_reader / live_changes, the CLI's refresh and read
timeout), run with `App.run_test()`. Everything is stamped with `time.monotonic()` from the moment the app
starts its fleet read:

- arrivals: for each host, when its read ended (`HostRead.seconds`: ssh, collection and parsing, in the
  fleet read's thread for that host), when the worker had built its model and the app applied it, and the first
  screen refresh after that (`call_after_refresh`: the callback runs once the screen has been repainted) — so
  "first host shown" and "all hosts shown" are when the screen shows them (the current view's rows, the tab
  counts, the header);
- keys: a thread sends view switches (`7`, `1`, `7`, ...) as key events at a steady pace, as a terminal
  driver's input thread does (`App.post_message`, thread-safe), stamped when sent; each key's latency runs to
  the first screen refresh after its view switch ran. Switching to a view whose rows changed since it was last
  shown brings its table up to date first, as it does for a user. Keys go during the read (until every host is
  shown), then `--idle-keys` of them after the read has ended and a pause, with nothing arriving.

Prints one JSON document: {"arrivals": [{"host", "read_s", "hosts", "applied", "shown"}], "during": [key],
"idle": [key], "reads", "hosts": {host: {"reachable", "ports", "error"}}}, each key {"key", "sent", "handled",
"shown"}, times in seconds since the read started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import cycle

from textual import events

from portscope.core.fleet.destinations import destinations
from portscope.tui.fleet_app import FLEET_REFRESH, FleetApp, live_changes, live_reader
from portscope.tui.fleet_model import FleetModel

#: The view switches sent, in turn: Hosts, then Ports.
KEYS = ("7", "1")
BOUND = 600.0  # seconds the read may take before the driver gives up (a bound, not a goal)
IDLE_PAUSE = 1.0  # seconds between the end of the read and the first idle key


@dataclass(slots=True)
class KeyTiming:
    """One key: when it was sent, when its view switch ran, when the screen showed it (monotonic seconds)."""

    key: str
    sent: float
    handled: float | None = None
    shown: float | None = None


@dataclass(slots=True)
class Arrival:
    """A host's read reaching the app: the host, how long its read took (ssh, collection, parsing: from when the
    fleet read started it), how many hosts are read with it, when the model was applied and when the screen
    showed it."""

    host: str
    read_s: float
    hosts: int
    applied: float
    shown: float | None = None


class TimedFleetApp(FleetApp):
    """FleetApp noting when each host's read and each view switch reach the screen."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: list[Arrival] = []
        self.arrived: set[str] = set()
        self.keys: list[KeyTiming] = []  # in the order sent; the app handles them in that order
        self.handled = 0
        self.all_shown = threading.Event()
        self.started: float | None = None  # when the first fleet read started

    def start_read(self, *args, **kwargs) -> None:
        if self.started is None:
            self.started = time.monotonic()
        super().start_read(*args, **kwargs)

    def apply(self, model: FleetModel) -> None:  # type: ignore[override]
        super().apply(model)
        arrived = [part for part in model.parts if part.read is not None and part.host not in self.arrived]
        for part in arrived:  # one per apply: the worker applies each host's read as it arrives
            assert part.read is not None
            self.arrived.add(part.host)
            arrival = Arrival(part.host, part.read.seconds, len(self.arrived), time.monotonic())
            self.arrivals.append(arrival)
            self.call_after_refresh(self._arrival_shown, arrival, len(self.arrived) == len(self.hosts))

    def _arrival_shown(self, arrival: Arrival, last: bool) -> None:
        arrival.shown = time.monotonic()
        if last:
            self.all_shown.set()

    def action_show_view(self, name: str) -> None:
        super().action_show_view(name)
        if self.handled >= len(self.keys):
            return
        key = self.keys[self.handled]
        self.handled += 1
        key.handled = time.monotonic()
        self.call_after_refresh(self._key_shown, key)

    def _key_shown(self, key: KeyTiming) -> None:
        key.shown = time.monotonic()

    def send_key(self, key: str) -> None:
        """Send `key` from another thread, as the terminal driver's input thread does; noted first."""
        self.keys.append(KeyTiming(key, time.monotonic()))
        self.post_message(events.Key(key, key))


def press_steadily(app: TimedFleetApp, pace: float, *, until: threading.Event | None, count: int) -> None:
    """Send view switches every `pace` seconds: until `until` is set, or `count` of them."""
    keys = cycle(KEYS)
    due = time.monotonic() + pace
    sent = 0
    while (until is not None and not until.is_set()) or (until is None and sent < count):
        time.sleep(max(0.0, due - time.monotonic()))
        if until is not None and until.is_set():
            break
        app.send_key(next(keys))
        sent += 1
        due += pace


async def settle(app: TimedFleetApp, sent: int) -> None:
    """Until the app has shown every key sent so far."""
    deadline = time.monotonic() + BOUND
    while len(app.keys) < sent or any(k.shown is None for k in app.keys):
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not show every key")
        await asyncio.sleep(0.05)


async def run(hosts: Sequence[str], pace: float, idle_keys: int, timeout: float) -> dict[str, object]:
    dests = destinations(list(hosts))
    app = TimedFleetApp(
        live_reader(dests, timeout=timeout, sudo=False), [d.text for d in dests], refresh=FLEET_REFRESH,
        read_timeout=timeout + 10, changes=live_changes(dests, timeout=timeout, sudo=False),
    )  # fmt: skip
    async with app.run_test(size=(160, 40)):
        start = app.started
        assert start is not None  # on_mount started the fleet read
        await asyncio.to_thread(press_steadily, app, pace, until=app.all_shown, count=0)
        if not app.all_shown.is_set():
            raise TimeoutError("not every host was shown")
        during = len(app.keys)
        deadline = time.monotonic() + BOUND
        while app.reading:
            if time.monotonic() > deadline:
                raise TimeoutError("the fleet read did not end")
            await asyncio.sleep(0.05)
        await settle(app, during)
        await asyncio.sleep(IDLE_PAUSE)
        reads = app.reads
        await asyncio.to_thread(press_steadily, app, pace, until=None, count=idle_keys)
        await settle(app, len(app.keys))
        if app.reads != reads or app.reading:
            raise RuntimeError("a read ran while the idle keys were timed (raise the refresh)")
        model = app.model
        assert model is not None
        parts = {
            part.host: {
                "reachable": part.reachable,
                "ports": part.model.count("ports") if part.model is not None else 0,
                "error": part.read.error if part.read is not None else None,
            }
            for part in model.parts
        }
        rebase = {"sent", "handled", "shown", "applied"}

        def since(record: KeyTiming | Arrival) -> dict[str, object]:
            return {k: (v - start if k in rebase and v is not None else v) for k, v in asdict(record).items()}

        return {
            "arrivals": [since(a) for a in app.arrivals],
            "during": [since(k) for k in app.keys[:during]],
            "idle": [since(k) for k in app.keys[during:]],
            "reads": app.reads,
            "hosts": parts,
        }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_tui_driver", description=__doc__.splitlines()[0])
    parser.add_argument("hosts", nargs="+", help="ssh destinations, as `portscope --host` takes them")
    parser.add_argument("--pace", type=float, default=0.25, help="seconds between two keys")
    parser.add_argument("--idle-keys", type=int, default=40,
                        help="keys sent after the read (their time must stay under the 30 s refresh)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=20.0, help="each host's read (as --timeout)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.hosts, args.pace, args.idle_keys, args.timeout))), flush=True)


if __name__ == "__main__":
    main()
