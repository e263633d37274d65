"""The command line: one argparse parser, and the dispatch. Exit codes: `EXIT_CODES` (also in the README)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from portscope.cli.complete_names import add_complete_command
from portscope.cli.completion import add_completion_command
from portscope.cli.ephemeral_cmd import add_ephemeral_command
from portscope.cli.output import add_output_option
from portscope.cli.publish_cmds import add_publish_commands
from portscope.cli.recreate_cmd import add_recreate_command
from portscope.cli.service_cmd import add_service_command
from portscope.cli.sources import (
    FLEET_FLAGS,
    FLEET_VALUE_OPTIONS,
    add_fleet_options,
    add_source_options,
    fleet_requested,
    load_snapshot,
)
from portscope.cli.version_cmd import VersionAction, add_version_command
from portscope.core.errors import PortscopeError
from portscope.core.model import Snapshot
from portscope.core.printable import printable

EXIT_CODES = """exit status:
  0  done (what could not be read is named on stderr)
  1  unexpected error; `conflicts`: errors were found; `status`: drift
  2  bad usage or input, a capture that cannot be read, a host port that is taken
  3  a rule dump that cannot be parsed (the message names the line)
  4  not root (for changes), or --strict and some source could not be read
  5  the container engine cannot be reached (for changes)
  6  the kernel refused a rule (nothing was changed), or the firewall backend cannot be written
"""


class Parser(argparse.ArgumentParser):
    """argparse's parser, with a usage error in one line that says where help is (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    """The whole command line: every subcommand's parser, each added by the module that runs it."""
    parser = Parser(
        prog="portscope",
        description="Every port published to containers on this host: who owns it, where it goes.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_read_commands(sub)
    add_ephemeral_command(sub)
    add_tui_command(sub)
    add_publish_commands(sub)
    add_service_command(sub)
    add_recreate_command(sub)
    add_version_command(sub)
    add_completion_command(sub)
    add_complete_command(sub)
    return parser


def add_read_commands(sub: argparse._SubParsersAction) -> None:
    """`list`, `conflicts` and `capture`."""
    p = sub.add_parser(
        "list", help="list published ports", epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_source_options(p)
    add_fleet_options(p)
    add_output_option(p, "portscope.list/1, docs/json.md", wide=True)
    p.add_argument("--container", metavar="NAME", help="only this container (name or id prefix)")
    p.add_argument("--port", type=int, metavar="PORT", help="only this host port")
    p.add_argument("--proto", choices=("tcp", "udp", "sctp"), help="only this protocol")
    p.add_argument("--strict", action="store_true", help="exit 4 when some source could not be read")
    p.add_argument(
        "-f", "--findings", action=argparse.BooleanOptionalAction, default=None,
        help="the findings of each binding (the diagnosis of `conflicts`, which reads every table): the table "
        "marks each row with its worst one unless --no-findings; JSON carries their kinds with --findings",
    )  # fmt: skip
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "conflicts",
        help="diagnose: conflicts, exposure, stale and missing rules",
        epilog="exit status: 0 no errors, 1 errors found (warnings and info do not count)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_options(p)
    add_fleet_options(p)
    add_output_option(p, "portscope.conflicts/1")
    p.set_defaults(func=cmd_conflicts)

    p = sub.add_parser("capture", help="write everything read to a JSON capture file")
    add_source_options(p)
    add_fleet_options(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="capture file to write ('-' = stdout)")
    p.set_defaults(func=cmd_capture)


def main(argv: Sequence[str] | None = None) -> int:
    """`portscope ARGV...`: the exit status."""
    args = build_parser().parse_args(_fleet_options_after_command(sys.argv[1:] if argv is None else argv))
    one_shot = args.command in ("list", "conflicts", "capture") and gc.isenabled()
    if one_shot:
        # A one-shot read builds ~10 objects per published port and exits: the cyclic collector
        # only costs time there. Long-running commands keep it.
        gc.disable()
    try:
        return _dispatch(args)
    finally:
        if one_shot:
            gc.enable()


def _dispatch(args: argparse.Namespace) -> int:
    """Run the chosen command; errors become one line and an exit status."""
    try:
        return args.func(args)
    except PortscopeError as exc:
        print(f"portscope: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # one line for the user; the traceback with PORTSCOPE_DEBUG=1
        if os.environ.get("PORTSCOPE_DEBUG"):
            raise
        what = f"{type(exc).__name__}: {printable(exc)}"
        print(f"portscope: internal error: {what} (rerun with PORTSCOPE_DEBUG=1 and report it)", file=sys.stderr)
        return 1


def _warn(warnings: list[str]) -> None:
    for line in warnings:
        print(f"portscope: {printable(line)}", file=sys.stderr)


def _dump(doc: dict) -> None:
    """JSON to stdout: indented for a person at a terminal, compact (and C-encoded, fast) for scripts.

    The renderers build plain trees (shared parts, no cycles): no circular-reference check is needed."""
    if sys.stdout.isatty():
        sys.stdout.write(json.dumps(doc, indent=1, check_circular=False))
    else:  # json.dumps (not dump) without indent takes the C encoder
        sys.stdout.write(json.dumps(doc, separators=(",", ":"), check_circular=False))
    sys.stdout.write("\n")  # on its own: `text + "\n"` would copy the whole document once more


def cmd_list(args: argparse.Namespace) -> int:
    if args.findings is None:  # by default for people (the table), on request for scripts (JSON)
        args.findings = args.output != "json"
    # the diagnosis (findings) needs every table and costs as much as `conflicts`
    scope = "all" if args.findings else "nat"
    return _answer(args, scope, _list_output, "bindings")


Output = Callable[[argparse.Namespace, Snapshot], tuple[dict | None, int]]


def _answer(args: argparse.Namespace, scope: str, output: Output, items: str) -> int:
    """Read the snapshot (or each host of a fleet, its `items` tagged with the host), print what `output` makes
    of it, and return its exit status."""
    if fleet_requested(args):
        from portscope.cli.fleet_cmd import run_fleet

        return run_fleet(args, scope, lambda snap: output(args, snap), items, _dump)
    snap = load_snapshot(args, scope=scope)
    _warn(snap.warnings)
    doc, code = output(args, snap)
    if doc is not None:
        _dump(doc)
    return code


def _list_output(args: argparse.Namespace, snap: Snapshot) -> tuple[dict | None, int]:
    """`list`'s JSON document of a snapshot (or None: the table is printed) and its exit status."""
    from portscope.cli.filters import filter_bindings

    if args.findings:
        from portscope.cli.list_findings import listing_of
        from portscope.core.binding_findings import finding_kinds

        inv, found = listing_of(snap)
        kinds: dict[str, list[str]] | None = finding_kinds(found)
    else:
        from portscope.core.inventory import build_inventory

        inv, found, kinds = build_inventory(snap, catches=False), {}, None
    bindings = filter_bindings(inv.bindings, container=args.container, port=args.port, proto=args.proto)
    code = 4 if args.strict and snap.warnings else 0
    if args.output == "json":
        from portscope.cli.render_json import list_json

        return list_json(snap, inv, bindings, kinds), code
    else:
        from portscope.cli.console import make_console
        from portscope.cli.render_table import print_bindings
        from portscope.core.binding_findings import worst

        marks = {bid: worst(fs) for bid, fs in found.items()} if args.findings else None
        print_bindings(bindings, make_console(), marks, wide=args.output == "wide")
    return None, code


def cmd_conflicts(args: argparse.Namespace) -> int:
    return _answer(args, "all", _conflicts_output, "findings")


def _conflicts_output(args: argparse.Namespace, snap: Snapshot) -> tuple[dict | None, int]:
    """`conflicts`'s JSON document of a snapshot (or None: the table is printed) and its exit status."""
    from portscope.core.diagnose.run import diagnose
    from portscope.core.inventory import build_inventory

    findings = diagnose(snap, build_inventory(snap))
    code = 1 if any(f.severity == "error" for f in findings) else 0
    if args.output == "json":
        from portscope.cli.render_json import conflicts_json

        return conflicts_json(snap, findings), code
    from portscope.cli.console import make_console
    from portscope.cli.render_table import print_findings

    print_findings(findings, make_console())
    return None, code


def cmd_capture(args: argparse.Namespace) -> int:
    from portscope.core.snapshot import snapshot_to_dict, write_capture

    if fleet_requested(args):
        from portscope.cli.fleet_cmd import write_fleet_capture

        return write_fleet_capture(args)

    snap = load_snapshot(args)
    _warn(snap.warnings)
    if args.output == "-":
        json.dump(snapshot_to_dict(snap), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        write_capture(snap, args.output)
        print(f"portscope: wrote {args.output}", file=sys.stderr)
    return 0


def _fleet_options_after_command(argv: Sequence[str]) -> list[str]:
    """Fleet options given before the command (`portscope --host h1 list`) are moved after it, where each
    command's parser takes them; then `_default_to_tui`."""
    argv = list(argv)
    before: list[str] = []
    while argv:
        name = argv[0].split("=", 1)[0]
        if name in FLEET_FLAGS or (name in FLEET_VALUE_OPTIONS and "=" in argv[0]):
            before.append(argv.pop(0))
        elif name in FLEET_VALUE_OPTIONS and len(argv) > 1:
            before += [argv.pop(0), argv.pop(0)]
        else:
            break
    rest = _default_to_tui(argv)
    return [rest[0], *before, *rest[1:]] if before else rest


def _default_to_tui(argv: Sequence[str]) -> list[str]:
    """No command (nothing, or options only such as `--snapshot FILE`) means the TUI."""
    argv = list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["tui", *argv]
    return argv


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (manual only) or more")
    return value


def add_tui_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="the interactive view (the default when no command is given)")
    p.add_argument("--snapshot", metavar="FILE", help="open a capture (from `portscope capture`) read-only")
    p.add_argument(
        "--refresh",
        metavar="SECONDS",
        type=_seconds,
        default=None,
        help="seconds between full reads of the host (default 60, a fleet's hosts 30; changes on this host are "
        "shown as they happen, whatever this says; 0 = no periodic full read, r reads everything)",
    )
    add_fleet_options(p)
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    if fleet_requested(args):  # hosts, or a fleet capture
        return _fleet_tui(args)
    from portscope.tui.app import run_app  # lazy: no other command pays for Textual

    return run_app(snapshot=args.snapshot, refresh=args.refresh)


def _fleet_tui(args: argparse.Namespace) -> int:
    """The TUI over a fleet: live over ssh, or read-only on a fleet capture (checked before the screen opens)."""
    from portscope.cli.fleet_cmd import fleet_destinations, read_fleet_capture
    from portscope.tui.fleet_app import capture_reader, live_changes, live_reader, run_fleet_app

    if args.snapshot:
        path = args.snapshot
        first = read_fleet_capture(path)  # a damaged file is refused before the screen opens
        reader = capture_reader(lambda: read_fleet_capture(path), first)
        return run_fleet_app(reader, [read.host for read in first], source=path, refresh=args.refresh)
    dests = fleet_destinations(args)
    options = {"timeout": args.timeout, "sudo": args.sudo}
    return run_fleet_app(live_reader(dests, **options), [d.text for d in dests], refresh=args.refresh,
                         read_timeout=args.timeout + 10, changes=live_changes(dests, **options))  # fmt: skip
