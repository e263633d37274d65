"""Save a snapshot as a capture file (JSON) and load it back, re-parsing the raw rule text."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from core.errors import ParseError, SnapshotError
from core.model import (
    BackendStatus,
    Connection,
    Container,
    ContainerNetwork,
    EngineInfo,
    HostFacts,
    PortMapping,
    PortRange,
    ProxyArgs,
    RuleSource,
    Snapshot,
    Socket,
)
from core.record import asdict
from core.rules.formats import parse_source

SCHEMA = "portscope.capture/1"


def snapshot_to_dict(snap: Snapshot) -> dict[str, Any]:
    """Everything read, as plain JSON data (parsed tables are left out: `sources` re-create them)."""
    return {
        "schema": SCHEMA,
        "taken_at": snap.taken_at,
        "host": asdict(snap.host),
        "backends": [asdict(b) for b in snap.backends],
        "sources": [asdict(s) for s in snap.sources],
        "sockets": [asdict(s) for s in snap.sockets],
        "connections": [asdict(c) for c in snap.connections],
        "engine": asdict(snap.engine),
        "containers": [asdict(c) for c in snap.containers],
        "warnings": list(snap.warnings),
    }


def write_capture(snap: Snapshot, path: str) -> None:
    """Write atomically (temporary file, then rename) so a reader never sees half a capture."""
    data = json.dumps(snapshot_to_dict(snap), indent=1, sort_keys=True)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".portscope-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_capture(path: str) -> Snapshot:
    """Load a capture file; a missing, unreadable or foreign file raises SnapshotError."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise SnapshotError(f"cannot read capture {path}: {exc.strerror} (check the path)") from None
    except ValueError as exc:
        raise SnapshotError(f"{path} is not a portscope capture: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SnapshotError(f"{path} is not a portscope capture (expected schema {SCHEMA})")
    try:
        return snapshot_from_dict(data)
    except (KeyError, TypeError, ValueError, ParseError) as exc:
        raise SnapshotError(f"{path}: damaged capture ({exc})") from None


def snapshot_from_dict(data: dict[str, Any]) -> Snapshot:
    host = dict(data["host"])
    rng = host.get("ephemeral_range")
    host["ephemeral_range"] = PortRange(**rng) if rng else None
    host["reserved_ports"] = tuple(PortRange(**r) for r in host.get("reserved_ports", ()))
    host["addresses"] = tuple(host.get("addresses", ()))
    host["networks"] = tuple(tuple(n) for n in host.get("networks", ()))
    host["route_localnet"] = tuple(host.get("route_localnet", ()))
    sources = [RuleSource(**s) for s in data.get("sources", [])]
    tables = [t for s in sources for t in parse_source(s)]
    return Snapshot(
        host=HostFacts(**host),
        taken_at=data["taken_at"],
        backends=[BackendStatus(**b) for b in data.get("backends", [])],
        sources=sources,
        tables=tables,
        sockets=[_socket(s) for s in data.get("sockets", [])],
        connections=[Connection(**c) for c in data.get("connections", [])],
        engine=EngineInfo(**data.get("engine", {"reachable": False})),
        containers=[_container(c) for c in data.get("containers", [])],
        warnings=list(data.get("warnings", [])),
    )


def _socket(d: dict[str, Any]) -> Socket:
    d = dict(d)
    d["cmdline"] = tuple(d.get("cmdline", ()))
    d["proxy"] = ProxyArgs(**d["proxy"]) if d.get("proxy") else None
    return Socket(**d)


def _container(d: dict[str, Any]) -> Container:
    d = dict(d)
    d["networks"] = tuple(ContainerNetwork(**n) for n in d.get("networks", ()))
    d["requested"] = tuple(PortMapping(**m) for m in d.get("requested", ()))
    d["in_force"] = tuple(PortMapping(**m) for m in d.get("in_force", ()))
    return Container(**d)
