"""`list`, `conflicts` and `capture` over a fleet: --host/--hosts/--inventory, or a fleet capture (--snapshot);
and the one host a change is made on (`publish --host DEST`).

Each host's document is exactly what the command prints on that host, with `"host": DEST` added to each of its
bindings (list) or findings (conflicts); the whole is `{"fleet": [{"host", "reachable", "error", "read_seconds",
"result"}, ...]}` in the order the hosts were given. A fleet capture is a JSON list of `{"host", "reachable",
"error", "read_seconds", "capture"}`, `capture` being the host's capture document (portscope.capture/1) or null.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from portscope.core.errors import PortscopeError, SnapshotError
from portscope.core.fleet.destinations import (
    Destination,
    DestinationError,
    destinations,
    inventory_hosts,
    read_hosts_file,
)
from portscope.core.fleet.read import HostRead, read_fleet
from portscope.core.model import Snapshot
from portscope.core.printable import printable

#: A host's output: its document for JSON (None when printed as a table) and its exit status.
HostOutput = Callable[[Snapshot], tuple[dict[str, Any] | None, int]]


def fleet_destinations(args: argparse.Namespace) -> list[Destination]:
    """--host values, then --hosts FILE's lines, then the inventory's hosts; each once, in that order."""
    texts = list(args.host or ())
    if args.hosts:
        texts += read_hosts_file(args.hosts)
    if args.inventory:
        texts += inventory_hosts(args.inventory)
    if not texts:
        raise DestinationError("no hosts given: name them with --host DEST, --hosts FILE or --inventory FILE")
    return destinations(texts)


def change_destination(args: argparse.Namespace) -> Destination:
    """The one host a change is made on (--host, --hosts, --inventory); DestinationError when they name none,
    or several: a change is made on one host at a time."""
    dests = fleet_destinations(args)
    if len(dests) > 1:
        named = ", ".join(printable(dest.text) for dest in dests[:3]) + (", ..." if len(dests) > 3 else "")
        raise DestinationError(f"a change is made on one host at a time ({named} given): name one with --host DEST")
    return dests[0]


def fleet_reads(args: argparse.Namespace, scope: str = "all") -> tuple[list[str], Iterator[HostRead]]:
    """The hosts in the order given, and their reads as they arrive: live over ssh, or from a fleet capture."""
    if args.snapshot:
        reads = read_fleet_capture(args.snapshot)
        return [read.host for read in reads], iter(reads)
    dests = fleet_destinations(args)
    return [dest.text for dest in dests], read_fleet(dests, timeout=args.timeout, sudo=args.sudo, scope=scope)


def run_fleet(
    args: argparse.Namespace, scope: str, output: HostOutput, tag: str, dump: Callable[[dict[str, Any]], None]
) -> int:
    """Read the fleet and show each host (`output`), in the order given; JSON as one fleet document whose `tag`
    items (bindings, findings) carry their host, each made as its host arrives (while others are still read).
    The exit status: the worst host's, or 1 when no host could be read (4 with --strict when some was not)."""
    order, arrivals = fleet_reads(args, scope)
    if args.output != "json":
        reads = {read.host: read for read in arrivals}
        shown = [_show_table(reads[host], output) for host in order]
        return _status(args, [code for code in shown if code is not None], len(order))
    entries: dict[str, dict[str, Any]] = {}
    codes = []
    for read in arrivals:
        doc = None
        if read.snapshot is not None:
            doc, code = output(read.snapshot)
            codes.append(code)
        entries[read.host] = _entry(read, None if doc is None else tag_host(doc, tag, read.host))
    for host in order:
        _warn(entries[host]["host"], entries[host]["error"], entries[host]["result"])
    dump({"fleet": [entries[host] for host in order]})
    return _status(args, codes, len(order))


def _show_table(read: HostRead, output: HostOutput) -> int | None:
    """Print one host's table under its name; its exit status (None: not read)."""
    if read.snapshot is None:
        print(f"portscope: {printable(read.error)}", file=sys.stderr)
        return None
    for line in read.snapshot.warnings:
        print(f"portscope: {printable(read.host)}: {printable(line)}", file=sys.stderr)
    print(f"== {printable(read.host)} ({printable(read.snapshot.host.hostname)}) ==")
    return output(read.snapshot)[1]


def _warn(host: str, error: str | None, doc: dict[str, Any] | None) -> None:
    if error:
        print(f"portscope: {printable(error)}", file=sys.stderr)
    for line in (doc or {}).get("warnings", ()):
        print(f"portscope: {printable(host)}: {printable(line)}", file=sys.stderr)


def _status(args: argparse.Namespace, codes: list[int], hosts: int) -> int:
    if not codes:
        return 1
    if getattr(args, "strict", False) and len(codes) < hosts:
        return 4
    return max(codes)


def _entry(read: HostRead, doc: Any, key: str = "result") -> dict[str, Any]:
    """A host's entry in a fleet's answer: how its read went, and `doc` under `key`."""
    return {
        "host": read.host,
        "reachable": read.reachable,
        "error": read.error,
        "read_seconds": round(read.seconds, 3),
        key: doc,
    }


def tag_host(doc: dict[str, Any], tag: str, host: str) -> dict[str, Any]:
    """`doc` with `"host": host` added to each item of its `tag` list (new dicts; shared parts untouched)."""
    return {**doc, tag: [{**item, "host": host} for item in doc[tag]]}


def write_fleet_capture(args: argparse.Namespace) -> int:
    """`capture` over a fleet: a list of each host's capture; exit 1 when no host could be read."""
    from portscope.core.snapshot import snapshot_to_dict, write_json_file

    order, arrivals = fleet_reads(args)
    arrived = {read.host: read for read in arrivals}
    reads = [arrived[host] for host in order]
    doc = [
        _entry(read, None if read.snapshot is None else snapshot_to_dict(read.snapshot), "capture") for read in reads
    ]
    for read in reads:
        if read.error:
            print(f"portscope: {printable(read.error)}", file=sys.stderr)
    if args.output == "-":
        json.dump(doc, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        write_json_file(doc, args.output)
        print(f"portscope: wrote {args.output} ({len(reads)} hosts)", file=sys.stderr)
    return 0 if any(read.reachable for read in reads) else 1


def read_fleet_capture(path: str) -> list[HostRead]:
    """The hosts of a fleet capture file, in its order; SnapshotError (one line) for a damaged one."""
    from portscope.core.snapshot import SCHEMA, read_capture_json, snapshot_from_dict
    from portscope.core.snapshot_schema import FieldError

    data = read_capture_json(path)
    if not isinstance(data, list) or not data:
        raise SnapshotError(f"{path} is not a fleet capture (expected a list of hosts)")
    reads = []
    for number, entry in enumerate(data, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("host"), str):
            raise SnapshotError(f"{path}: entry {number} of the fleet capture has no host (capture it again)")
        capture = entry.get("capture")
        snapshot = None
        if capture is not None:
            if not isinstance(capture, dict) or capture.get("schema") != SCHEMA:
                raise SnapshotError(f"{path}: entry {number} is not a portscope capture (expected schema {SCHEMA})")
            try:
                snapshot = snapshot_from_dict(capture)
            except (FieldError, PortscopeError) as exc:
                raise SnapshotError(f"{path}: entry {number} ({entry['host']}) is damaged: {exc}") from None
        error = None if snapshot is not None else str(entry.get("error") or f"{entry['host']}: not read")
        seconds = entry.get("read_seconds")
        seconds = float(seconds) if isinstance(seconds, (int, float)) else 0.0
        reads.append(HostRead(host=entry["host"], snapshot=snapshot, error=error, seconds=seconds))
    return reads
