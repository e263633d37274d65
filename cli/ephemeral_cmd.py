"""`portscope ephemeral`: the TUI's Ephemeral view from the shell (schema `portscope.ephemeral/1`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from portscope.cli.output import add_output_option
from portscope.cli.sources import add_source_options, load_snapshot
from portscope.core.printable import printable

if TYPE_CHECKING:  # every command builds its parser from here: the command's own imports wait for it
    from portscope.core.ephemeral import EphemeralReport
    from portscope.core.ephemeral_uses import RangeUse
    from portscope.core.model import Snapshot

EPHEMERAL_SCHEMA = "portscope.ephemeral/1"


def add_ephemeral_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ephemeral", help="the ephemeral port range: reserved, the engine's picks, overlaps, fill")
    add_source_options(p)
    add_output_option(p, f"{EPHEMERAL_SCHEMA}, docs/ephemeral.md")
    p.set_defaults(func=cmd_ephemeral)


def _use_json(u: RangeUse) -> dict[str, Any]:
    return {"what": u.what, "port": u.port, "protocol": u.protocol, "who": u.who, "note": u.note,
            "binding": u.binding, "pid": u.pid}  # fmt: skip


def ephemeral_json(snap: Snapshot, report: EphemeralReport, uses: list[RangeUse]) -> dict[str, Any]:
    rng = report.range
    return {
        "schema": EPHEMERAL_SCHEMA,
        "taken_at": snap.taken_at,
        "host": {"hostname": snap.host.hostname, "kernel": snap.host.kernel, "is_root": snap.host.is_root},
        "range": None if rng is None else {"first": rng.first, "last": rng.last, "size": report.size},
        "reserved": [{"first": r.first, "last": r.last} for r in report.reserved],
        "used_ports": report.used_ports,
        "fill": round(report.fill, 6),
        "listeners": report.listeners,
        "connections": report.connections,
        "engine_chosen": [_use_json(u) for u in uses if u.what == "docker"],
        "overlaps": [_use_json(u) for u in uses if u.what == "published"],
        "uses": [_use_json(u) for u in uses],
        "next_engine_ports": list(report.next_docker_ports),
        "top_processes": [{"process": name, "ports": n} for name, n in report.top_processes],
        "warnings": list(snap.warnings),
    }


def cmd_ephemeral(args: argparse.Namespace) -> int:
    from portscope.core.ephemeral import ephemeral_report
    from portscope.core.ephemeral_uses import range_uses
    from portscope.core.inventory import build_inventory

    snap = load_snapshot(args)
    report = ephemeral_report(snap, build_inventory(snap, catches=False).bindings)
    uses = range_uses(snap, report)
    for line in snap.warnings:
        print(f"portscope: {printable(line)}", file=sys.stderr)
    if args.output == "json":
        import json

        indent = 1 if sys.stdout.isatty() else None
        sys.stdout.write(json.dumps(ephemeral_json(snap, report, uses), indent=indent) + "\n")
        return 0
    from portscope.cli.console import make_console
    from portscope.cli.render_ephemeral import print_ephemeral

    print_ephemeral(report, uses, make_console())
    return 0
