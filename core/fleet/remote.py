"""A Snapshot of a remote host, read through its collector session and parsed by the local read's own code.

The rules are read by core.rules.live.read_rules itself, with `RuleTools` that find and run the tools over
the session; sockets, processes, host facts and the engine's answers come raw from the collector and go
through the parse halves of core.sockets, core.host and core.containers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from portscope.core.containers import (
    containers_from_inspects,
    engine_failure_reason,
    engine_name_version,
    missing_socket_reason,
    permission_reason,
)
from portscope.core.fleet.transport import Session
from portscope.core.host import host_facts_from, networks_from
from portscope.core.live import assemble
from portscope.core.model import Container, EngineInfo, HostFacts, Snapshot, Socket
from portscope.core.rules.live import RuleTools, read_rules
from portscope.core.rules.rule_tools import LEGACY_SAVE_TOOLS, NFT_SAVE_TOOLS
from portscope.core.sockets import NO_PROCESS, PROC_NET_FILES, endpoints_from, parse_proc_net, process_info_from
from portscope.core.tools import ToolResult

#: Every tool read_rules may look for, asked for with the first request.
RULE_TOOLS = (
    *(name for _, save, tool in NFT_SAVE_TOOLS for name in (save, tool)),
    *(tool for *_, tool in LEGACY_SAVE_TOOLS),
    "nft",
)
LEGACY_FILES = tuple(f"/proc/net/{names}" for _, names, _ in LEGACY_SAVE_TOOLS)
ENGINE_TIMEOUT = 5.0
TOOL_TIMEOUT = 10.0


class Turns:
    """Hosts' reads parse one at a time: a thread holds the turn while it parses and gives it up while it waits on
    its host. The parsing is Python's, under one interpreter lock, so taking turns costs the fleet nothing, while
    twenty threads parsing at once would make each host (and the TUI's own thread) wait for all of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Inside `turn()`: give the turn up while waiting on the host, and take it back after."""
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()


class RemoteTools:
    """core.rules.live's tools, run on the other end of a session (which/legacy answers come with the facts)."""

    def __init__(
        self, session: Session, found: Mapping[str, str | None], files: Mapping[str, Any], turns: Turns
    ) -> None:
        self.session = session
        self.found = dict(found)
        self.files = files
        self.turns = turns

    def which(self, name: str) -> str | None:
        if name not in self.found:
            with self.turns.waiting():
                answer = self.session.request({"op": "which", "names": [name]})
            self.found.update(answer["which"])
        return self.found[name]

    def legacy_tables(self, path: str) -> list[str] | None:
        answer = self.files.get(path) or {}
        if answer.get("error") == "denied":
            return None
        return str(answer.get("text", "")).split()

    def run_all(
        self,
        commands: Sequence[Sequence[str]],
        timeout: float = TOOL_TIMEOUT,
        readers: dict[tuple[str, ...], Callable[[Iterable[str]], str]] | None = None,
    ) -> list[ToolResult]:
        """Run a stage remotely; each output with a reader is fed to it as a local run's would be."""
        request = {"op": "run", "commands": [list(argv) for argv in commands], "timeout": timeout}
        results = []
        with self.turns.waiting():
            answer = self.session.request(request)
        for raw in answer["results"]:
            argv = tuple(raw["argv"])
            stdout = raw["stdout"]
            reader = readers.get(argv) if readers else None
            if reader is not None:
                stdout = reader(iter(stdout.splitlines(keepends=True)))
            results.append(ToolResult(argv=argv, returncode=raw["returncode"], stdout=stdout, stderr=raw["stderr"]))
        return results

    def rule_tools(self) -> RuleTools:
        """The other host's tools, read in one stage (its generation is not this kernel's; a stage is a round trip)."""
        return RuleTools(
            which=self.which,
            run_all=self.run_all,
            legacy_tables=self.legacy_tables,
            libiptc=False,
            generation=None,
        )


def read_remote(session: Session, scope: str = "all", turns: Turns | None = None) -> Snapshot:
    """One read of the host at the other end of `session`, as core.live.read_live reads this one; with `turns`
    (shared by a fleet's reads), it parses in its turn."""
    turns = turns or Turns()
    taken_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    facts = session.request(
        {"op": "facts", "tools": list(RULE_TOOLS), "files": list(LEGACY_FILES), "engine_timeout": ENGINE_TIMEOUT}
    )
    with turns.turn():
        host = host_from(facts["host"])
        sockets, connections = sockets_from(facts["sockets"])
        engine, containers = engine_from(facts["engine"])
        tools = RemoteTools(session, facts["which"], facts["files"], turns)
        rules = read_rules("/proc", TOOL_TIMEOUT, scope, tools.rule_tools())
        return assemble(host, rules, sockets, connections, engine, containers, taken_at)


def host_from(raw: Mapping[str, Any]) -> HostFacts:
    """HostFacts from the collector's `host` answer."""
    return host_facts_from(
        hostname=raw["hostname"],
        kernel=raw["kernel"],
        is_root=bool(raw["is_root"]),
        port_range=raw["port_range"].get("text"),
        reserved_ports=raw["reserved_ports"].get("text"),
        networks=networks_from(ip_addresses(raw["addresses"].get("stdout") or "")),
        route_localnet=tuple(
            name for name, answer in sorted(raw["route_localnet"].items()) if answer.get("text", "").strip() == "1"
        ),
    )


def ip_addresses(text: str) -> list[tuple[str, str, int | str]]:
    """(interface, address, prefix length) from `ip -j address show`; an IPv4 address is named by its label, as
    getifaddrs (psutil) names it."""
    try:
        links = json.loads(text) if text.strip() else []
    except ValueError:
        return []
    found = []
    for link in links:
        for addr in link.get("addr_info") or ():
            if addr.get("family") not in ("inet", "inet6") or "local" not in addr:
                continue
            name = addr.get("label") if addr["family"] == "inet" and addr.get("label") else link.get("ifname", "")
            found.append((str(name), str(addr["local"]), addr.get("prefixlen", "")))
    return found


def sockets_from(raw: Mapping[str, Any]) -> tuple[list[Socket], list[Any]]:
    """Sockets and connections from the collector's /proc/net texts and process facts."""
    inodes = {str(inode): int(pid) for inode, pid in raw["inodes"].items()}
    processes = raw["processes"]
    conns = itertools.chain.from_iterable(
        parse_proc_net(name, raw["net"][name].get("text", ""), inodes) for name in PROC_NET_FILES
    )

    def info(pid: int) -> Any:
        facts = processes.get(str(pid))
        return NO_PROCESS if facts is None else process_info_from(facts["comm"], facts["cmdline"], facts["user"])

    return endpoints_from(conns, info)


def engine_from(raw: Mapping[str, Any]) -> tuple[EngineInfo, list[Container]]:
    """EngineInfo and containers from the collector's `engine` answer, in a local read's words."""
    endpoint = raw["endpoint"]
    path = "/" + endpoint.removeprefix("unix://").lstrip("/")
    error = raw.get("error")
    if error is None:
        name, version = engine_name_version(raw["version"])
        info = EngineInfo(reachable=True, endpoint=endpoint, version=version, name=name)
        return info, containers_from_inspects(raw["containers"])
    if error == "unsupported":
        reason = f"DOCKER_HOST there is {endpoint}: portscope reads another host's engine through a unix socket only"
        return EngineInfo(reachable=False, endpoint=endpoint, reason=reason), []
    if error == "missing":
        return EngineInfo(reachable=False, endpoint=endpoint, reason=missing_socket_reason(endpoint, path)), []
    if error == "permission" and "stage" not in raw:
        return EngineInfo(reachable=False, endpoint=endpoint, reason=permission_reason(path)), []
    exc_type = {"timeout": TimeoutError, "refused": ConnectionRefusedError, "permission": PermissionError}
    exc = exc_type.get(error, RuntimeError)(raw.get("message", ""))
    reason = engine_failure_reason(endpoint, exc, ENGINE_TIMEOUT)
    if raw.get("stage") == "containers":
        name, version = engine_name_version(raw["version"])
        reason = "the engine answered but listing containers failed: " + reason
        return EngineInfo(reachable=False, endpoint=endpoint, version=version, name=name, reason=reason), []
    return EngineInfo(reachable=False, endpoint=endpoint, reason=reason), []
