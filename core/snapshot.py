"""Save a snapshot as a capture file (JSON) and load it back, re-parsing the raw rule text."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import asdict
from typing import Any

from portscope.core import snapshot_schema as schema
from portscope.core.errors import ParseError, SnapshotError
from portscope.core.model import EngineInfo, Snapshot
from portscope.core.rules.formats import parse_source
from portscope.core.snapshot_schema import FieldError

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
    """Write atomically (temporary file, then rename) so a reader never sees half a capture.

    Only a new file or an existing regular file is written: a directory, a device, a FIFO, a symlink,
    a missing folder or an empty name is refused (SnapshotError, exit 2) before anything is written.
    """
    write_json_file(snapshot_to_dict(snap), path)


def write_json_file(doc: Any, path: str) -> None:
    """`doc` as indented JSON, written as `write_capture` writes (atomically, to a new or regular file only)."""
    folder = _capture_folder(path)
    data = json.dumps(doc, indent=1, sort_keys=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".portscope-", dir=folder)
    except OSError as exc:
        raise SnapshotError(f"cannot write a capture in {folder}: {exc.strerror} (choose another folder)") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _capture_folder(path: str) -> str:
    """The folder a capture goes to, once `path` is known to name a new or a regular file."""
    if not path:
        raise SnapshotError("the capture file name is empty: give a file name, or '-' for stdout")
    if path.endswith("/"):
        raise SnapshotError(f"{path} is a folder, not a file name: give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SnapshotError(f"cannot write {path}: the folder {folder} does not exist (create it first)")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return folder
    except OSError as exc:
        raise SnapshotError(f"cannot write {path}: {exc.strerror} (check the path)") from None
    if stat.S_ISLNK(info.st_mode):
        raise SnapshotError(f"{path} is a symbolic link: give the path of the file itself")
    if stat.S_ISDIR(info.st_mode):
        raise SnapshotError(f"{path} is a folder: give a file name inside it")
    if not stat.S_ISREG(info.st_mode):
        raise SnapshotError(f"{path} is not a regular file (a device, FIFO or socket): captures go to files only")
    return folder


def read_capture_json(path: str) -> Any:
    """The JSON document of a capture file (a host's or a fleet's); SnapshotError (one line) when it cannot be
    read or is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise SnapshotError(f"cannot read capture {path}: {exc.strerror} (check the path)") from None
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"{path} is not a portscope capture: {_one_line(exc)}") from None


def read_capture(path: str) -> Snapshot:
    """Load a capture file; a missing, unreadable, foreign or damaged file raises SnapshotError (one line)."""
    data = read_capture_json(path)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SnapshotError(f"{path} is not a portscope capture (expected schema {SCHEMA})")
    try:
        return snapshot_from_dict(data)
    except FieldError as exc:
        raise SnapshotError(f"{path}: damaged capture: {_one_line(exc)} (capture it again)") from None
    except ParseError as exc:
        raise SnapshotError(f"{path}: damaged capture: its rule text does not parse: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def snapshot_from_dict(data: dict[str, Any]) -> Snapshot:
    """The snapshot a capture document describes; FieldError names the first wrong field."""
    sources = list(schema.field(data, "sources", schema.many(schema.rule_source), ()))
    tables = [t for s in sources for t in parse_source(s)]
    return Snapshot(
        host=schema.field(data, "host", schema.host),
        taken_at=schema.field(data, "taken_at", schema.text),
        backends=list(schema.field(data, "backends", schema.many(schema.backend_status), ())),
        sources=sources,
        tables=tables,
        sockets=list(schema.field(data, "sockets", schema.many(schema.socket_), ())),
        connections=list(schema.field(data, "connections", schema.many(schema.connection), ())),
        engine=schema.field(data, "engine", schema.engine, EngineInfo(reachable=False)),
        containers=list(schema.field(data, "containers", schema.many(schema.container), ())),
        warnings=list(schema.field(data, "warnings", schema.many(schema.text), ())),
    )
