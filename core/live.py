"""Read a snapshot of the live host: rules, sockets, containers and host facts, concurrently."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from portscope.core.containers import read_containers
from portscope.core.host import read_host_facts
from portscope.core.model import Snapshot
from portscope.core.rules.live import read_rules
from portscope.core.sockets import read_endpoints

if TYPE_CHECKING:
    from typing import Any


def read_live(
    docker_host: str | None = None, proc: str = "/proc", timeout: float = 10.0, scope: str = "all"
) -> Snapshot:
    """One consistent read of this host. Nothing here raises for a missing source: it is reported.

    The engine and the rules are read in worker threads while sockets are read here, so the
    slowest source sets the time, not their sum. `scope="nat"`: native nftables tables are read
    only as far as bindings need (`read_rules`).
    """
    taken_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    engine_job = _Job(read_containers, docker_host, min(timeout, 5.0))
    rules_job = _Job(read_rules, proc, timeout, scope)
    host = read_host_facts(proc)
    sockets, connections = read_endpoints()
    engine, containers = engine_job.result()
    rules = rules_job.result()
    unread = [f"{b.backend}{'/' + b.family if b.family else ''}: {b.reason}" for b in rules.backends if not b.read]
    if not engine.reachable and engine.reason and "no Docker socket" not in engine.reason:
        unread.append(f"the Docker API: {engine.reason}")
    if host.is_root:
        warnings = unread
    else:
        names = sorted({line.split(":")[0].split("/")[0] for line in unread})
        what = ", ".join(names) if names else "nothing else"
        warnings = [
            f"not root: could not read {what}, nor other users' processes — run as root (sudo portscope ...) "
            "to see every published port"
        ]
    return Snapshot(
        host=host,
        taken_at=taken_at,
        backends=rules.backends,
        sources=rules.sources,
        tables=rules.tables,
        sockets=sockets,
        connections=connections,
        engine=engine,
        containers=containers,
        warnings=warnings,
    )


class _Job:
    """Run a function in a thread; `result()` waits and returns its value or raises its error.

    (A bare thread, not concurrent.futures: its import alone costs more than the work saved.)
    """

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func, *args), daemon=True)
        self._thread.start()

    def _run(self, func: Callable[..., Any], *args: Any) -> None:
        try:
            self._value = func(*args)
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
