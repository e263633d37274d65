"""Read a snapshot of the live host: rules, sockets, containers and host facts, concurrently.

`read_live` reads everything; `LiveReader` keeps the last snapshot and reads again only the parts
that changed (`core.changes` says which).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from portscope.core.changes.kept_tables import ChainMap, keep_unchanged, read_chains
from portscope.core.changes.rule_changes import RuleChanges
from portscope.core.containers import read_containers
from portscope.core.host import read_host_facts
from portscope.core.model import Connection, Container, EngineInfo, HostFacts, RuleSource, Snapshot, Socket
from portscope.core.rules.iptables_text import known_rules
from portscope.core.rules.live import RuleRead, Since, read_rules
from portscope.core.sockets import read_endpoints, rootless_hints

#: The parts of a snapshot that can be read again on their own.
PARTS = frozenset({"rules", "containers", "sockets"})


@dataclass(slots=True)
class _Parts:
    host: HostFacts
    rules: RuleRead
    sockets: list[Socket]
    connections: list[Connection]
    engine: EngineInfo
    containers: list[Container]


def read_live(
    docker_host: str | None = None, proc: str = "/proc", timeout: float = 10.0, scope: str = "all"
) -> Snapshot:
    """One consistent read of this host. Nothing here raises for a missing source: it is reported.

    The engine and the rules are read in worker threads while sockets are read here, so the
    slowest source sets the time, not their sum. `scope="nat"`: native nftables tables are read
    only as far as bindings need; `scope="port"`: no iptables or native text rule is parsed until looked at
    (`read_rules`).
    """
    return LiveReader(docker_host, proc, timeout, scope).read()


class LiveReader:
    """Reads the live host, then again only what changed: a part not named in `read(changed)` is the last
    read's. Rules read again with exactly the same text keep the last parsed tables (the same objects), so
    analysis can tell they did not change; otherwise each iptables chain that reads as before is the last
    read's, parsed already (`core.changes.kept_tables`), and in a chain read again each line read before is
    not parsed again (`iptables_text.known_rules`)."""

    def __init__(
        self,
        docker_host: str | None = None,
        proc: str = "/proc",
        timeout: float = 10.0,
        scope: str = "all",
        rule_changes: RuleChanges | None = None,
    ) -> None:
        self.docker_host, self.proc, self.timeout, self.scope = docker_host, proc, timeout, scope
        self.rule_changes = rule_changes  # which nf_tables tables changed since the last read (the watcher's)
        self._last: _Parts | None = None
        self._chains: ChainMap | None = None  # read_chains of the last read's rules, once a change needed it

    def read(self, changed: Collection[str] = PARTS) -> Snapshot:
        """A snapshot with the `changed` parts read now (everything on the first read)."""
        last = self._last
        again = PARTS if last is None else PARTS & set(changed)
        taken_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            return self._read(last, again, taken_at)
        except BaseException:
            if self.rule_changes is not None and "rules" in again:
                self.rule_changes.unknown()  # what this read was told of the changes is lost with it
            raise

    def _read(self, last: _Parts | None, again: Collection[str], taken_at: str) -> Snapshot:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="portscope-read") as pool:
            engine_read = pool.submit(self._read_engine) if "containers" in again else None
            rules_read = pool.submit(self._read_rules, again != PARTS) if "rules" in again else None
            host = read_host_facts(self.proc)
            endpoints = read_endpoints() if "sockets" in again else None
            engine_part = engine_read.result() if engine_read else None
            rules_part = rules_read.result() if rules_read else None
        if last is None:
            assert endpoints and engine_part and rules_part
            return self._keep(_Parts(host, rules_part, *endpoints, *engine_part), taken_at)
        sockets, connections = endpoints or (last.sockets, last.connections)
        engine, containers = engine_part or (last.engine, last.containers)
        rules = rules_part or last.rules
        if rules is not last.rules and same_rules(rules.sources, last.rules.sources):
            last.rules.generation = rules.generation  # the same rules, now known to hold at this generation
            rules = last.rules
        elif rules is not last.rules:
            before = self._chains if self._chains is not None else read_chains(last.rules.sources)
            self._chains = read_chains(rules.sources)
            rules = keep_unchanged(rules, last.rules, before, self._chains)
        return self._keep(_Parts(host, rules, sockets, connections, engine, containers), taken_at)

    def _keep(self, parts: _Parts, taken_at: str) -> Snapshot:
        self._last = parts
        return _snapshot(parts, taken_at)

    def _read_engine(self) -> tuple[EngineInfo, list[Container]]:
        return read_containers(self.docker_host, min(self.timeout, 5.0))

    def _read_rules(self, partial: bool) -> RuleRead:
        """The rules: with `partial` (a read of what changed), only the nf_tables tables changed since the last
        read are read again; a read of everything (the safety net) reads every table."""
        last = self._last.rules if self._last is not None else None
        known = known_rules(last.tables) if last is not None else None
        changes = self.rule_changes
        since = Since(last, changes.touched) if partial and last is not None and changes is not None else None
        if since is None and changes is not None:
            changes.read_everything()
        return read_rules(self.proc, self.timeout, self.scope, known=known, since=since)


def same_rules(a: list[RuleSource], b: list[RuleSource]) -> bool:
    """True when two reads of the rules found the same rules: the tools' time stamps and chain policy counters
    (`# Generated by ... on DATE`, `:INPUT ACCEPT [12:3456]`) aside."""
    return len(a) == len(b) and all(_same_source(x, y) for x, y in zip(a, b, strict=True))


def _same_source(a: RuleSource, b: RuleSource) -> bool:
    if (a.origin, a.format) != (b.origin, b.format):
        return False
    return a.text == b.text or _rules_only(a.text) == _rules_only(b.text)


def _rules_only(text: str) -> list[str]:
    lines = (line for line in text.splitlines() if not line.startswith("#"))
    return [line.rsplit(" [", 1)[0] if line.startswith(":") else line for line in lines]


def same_facts(a: Snapshot, b: Snapshot) -> bool:
    """True when two reads found the same host (only the time differs): nothing to analyse again."""
    return (
        (a.tables is b.tables or a.sources == b.sources)
        and a.host == b.host
        and a.backends == b.backends
        and a.engine == b.engine
        and a.containers == b.containers
        and a.sockets == b.sockets
        and a.connections == b.connections
        and a.warnings == b.warnings
    )


def read_warnings(host: HostFacts, rules: RuleRead, engine: EngineInfo) -> list[str]:
    """What could not be read, one line each; a non-root read says so in one line."""
    unread = [f"{b.backend}{'/' + b.family if b.family else ''}: {b.reason}" for b in rules.backends if not b.read]
    if not engine.reachable and engine.reason and "no Docker socket" not in engine.reason:
        unread.append(f"the Docker API: {engine.reason}")
    if host.is_root:
        return unread
    names = sorted({line.split(":")[0].split("/")[0] for line in unread})
    what = ", ".join(names) if names else "nothing else"
    return [
        f"not root: could not read {what}, nor other users' processes — run as root (sudo portscope ...) "
        "to see every published port"
    ]


def _snapshot(parts: _Parts, taken_at: str) -> Snapshot:
    return assemble(parts.host, parts.rules, parts.sockets, parts.connections, parts.engine, parts.containers, taken_at)


def assemble(
    host: HostFacts,
    rules: RuleRead,
    sockets: list[Socket],
    connections: list[Connection],
    engine: EngineInfo,
    containers: list[Container],
    taken_at: str,
) -> Snapshot:
    """A snapshot of what was read, with its warnings: what could not be read, and rootless engines' hints."""
    warnings = read_warnings(host, rules, engine)
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
