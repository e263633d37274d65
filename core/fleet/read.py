"""Read a fleet: every host at once (a thread each), each result given as soon as it arrives."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from portscope.core.errors import PortscopeError
from portscope.core.fleet.destinations import Destination
from portscope.core.fleet.remote import Turns, read_remote
from portscope.core.fleet.transport import Session
from portscope.core.model import Snapshot
from portscope.core.printable import printable

DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class HostRead:
    """One host's read: its snapshot, or the one line saying why there is none."""

    host: str  # the destination as given
    snapshot: Snapshot | None
    error: str | None
    seconds: float

    @property
    def reachable(self) -> bool:
        return self.snapshot is not None


def read_fleet(
    destinations: Iterable[Destination], *, timeout: float = DEFAULT_TIMEOUT, sudo: bool = False, scope: str = "all"
) -> Iterator[HostRead]:
    """Each host's read as it arrives (not in the order given); `timeout` bounds each host's whole read."""
    dests = list(destinations)
    if not dests:
        return
    turns = Turns()
    with ThreadPoolExecutor(max_workers=len(dests), thread_name_prefix="portscope-host") as pool:
        futures = [pool.submit(read_host, dest, timeout=timeout, sudo=sudo, scope=scope, turns=turns) for dest in dests]
        for future in as_completed(futures):
            yield future.result()


def read_host(
    dest: Destination,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    sudo: bool = False,
    scope: str = "all",
    turns: Turns | None = None,
) -> HostRead:
    """One host's read; never raises: a host that cannot be read gives its reason. The reads of one fleet share
    `turns`: they wait on their hosts together and parse one at a time."""
    started = time.monotonic()
    try:
        if dest.local:
            from portscope.core.live import read_live

            snapshot = read_live(timeout=min(timeout, 10.0), scope=scope)
        else:
            with Session(dest, timeout, sudo=sudo) as session:
                snapshot = read_remote(session, scope, turns)
    except PortscopeError as exc:
        return HostRead(dest.text, None, printable(str(exc)), time.monotonic() - started)
    except Exception as exc:  # one host's failure (an answer of the wrong shape, say) never ends the others'
        reason = f"{dest.text}: the read failed: {type(exc).__name__}: {printable(str(exc))}"
        return HostRead(dest.text, None, reason, time.monotonic() - started)
    return HostRead(dest.text, snapshot, None, time.monotonic() - started)
