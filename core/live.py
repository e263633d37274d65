"""Read a snapshot of the live host: rules, sockets, containers and host facts, concurrently."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from portscope.core.containers import read_containers
from portscope.core.host import read_host_facts
from portscope.core.model import Snapshot
from portscope.core.rules.live import read_rules
from portscope.core.sockets import read_endpoints, rootless_hints


def read_live(
    docker_host: str | None = None, proc: str = "/proc", timeout: float = 10.0, scope: str = "all"
) -> Snapshot:
    """One consistent read of this host. Nothing here raises for a missing source: it is reported.

    The engine and the rules are read in worker threads while sockets are read here, so the
    slowest source sets the time, not their sum. `scope="nat"`: native nftables tables are read
    only as far as bindings need (`read_rules`).
    """
    taken_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="portscope-read") as pool:
        engine_read = pool.submit(read_containers, docker_host, min(timeout, 5.0))
        rules_read = pool.submit(read_rules, proc, timeout, scope)
        host = read_host_facts(proc)
        sockets, connections = read_endpoints()
        engine, containers = engine_read.result()
        rules = rules_read.result()
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
    warnings += rootless_hints(sockets, engine.endpoint if engine.reachable else None)
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
