"""Argument parsing and dispatch. Exit codes: see `EXIT_CODES` (also in the README)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from cli.sources import add_source_options, load_snapshot
from core.errors import PortscopeError

EXIT_CODES = """exit status:
  0  done (rules that could not be read are named on stderr)
  1  unexpected error
  2  bad usage, or a capture file that cannot be read
  3  a rule dump that cannot be parsed (the message names the line)
  4  --strict and some source could not be read (e.g. not root)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portscope",
        description="Every port published to containers on this host: who owns it, where it goes.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list published ports", epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_options(p)
    p.add_argument("--json", action="store_true", help="print JSON (schema portscope.list/1, docs/json.md)")
    p.add_argument("--container", metavar="NAME", help="only this container (name or id prefix)")
    p.add_argument("--port", type=int, metavar="PORT", help="only this host port")
    p.add_argument("--proto", choices=("tcp", "udp", "sctp"), help="only this protocol")
    p.add_argument("--strict", action="store_true", help="exit 4 when some source could not be read")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("conflicts", help="diagnose: conflicts, exposure, stale and missing rules",
                       epilog="exit status: 0 no errors, 1 errors found (warnings and info do not count)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_options(p)
    p.add_argument("--json", action="store_true", help="print JSON (schema portscope.conflicts/1)")
    p.set_defaults(func=cmd_conflicts)

    p = sub.add_parser("capture", help="write everything read to a JSON capture file")
    add_source_options(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="capture file to write ('-' = stdout)")
    p.set_defaults(func=cmd_capture)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["list", *(argv or sys.argv[1:])])
    try:
        return args.func(args)
    except PortscopeError as exc:
        print(f"portscope: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # one line for the user; the traceback with PORTSCOPE_DEBUG=1
        if os.environ.get("PORTSCOPE_DEBUG"):
            raise
        print(f"portscope: internal error: {type(exc).__name__}: {exc} (rerun with PORTSCOPE_DEBUG=1 and report it)",
              file=sys.stderr)
        return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _warn(warnings: list[str]) -> None:
    for line in warnings:
        print(f"portscope: {line}", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from cli.filters import filter_bindings
    from core.inventory import build_inventory

    snap = load_snapshot(args)
    inv = build_inventory(snap)
    bindings = filter_bindings(inv.bindings, container=args.container, port=args.port, proto=args.proto)
    _warn(snap.warnings)
    if args.json:
        from cli.render_json import list_json

        json.dump(list_json(snap, inv, bindings), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        from cli.render_table import print_bindings

        print_bindings(bindings, Console())
    return 4 if args.strict and snap.warnings else 0


def cmd_conflicts(args: argparse.Namespace) -> int:
    from core.diagnose.run import diagnose
    from core.inventory import build_inventory

    snap = load_snapshot(args)
    findings = diagnose(snap, build_inventory(snap))
    _warn(snap.warnings)
    if args.json:
        from cli.render_json import conflicts_json

        json.dump(conflicts_json(snap, findings), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        from cli.render_table import print_findings

        print_findings(findings, Console())
    return 1 if any(f.severity == "error" for f in findings) else 0


def cmd_capture(args: argparse.Namespace) -> int:
    from core.snapshot import snapshot_to_dict, write_capture

    snap = load_snapshot(args)
    _warn(snap.warnings)
    if args.output == "-":
        json.dump(snapshot_to_dict(snap), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        write_capture(snap, args.output)
        print(f"portscope: wrote {args.output}", file=sys.stderr)
    return 0
