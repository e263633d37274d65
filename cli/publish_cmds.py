"""`portscope publish|unpublish|block|unblock|apply|status|reconcile|watch`.

Only argparse is imported here: `core.publish` is imported by each command when it runs, so
`portscope list` pays nothing for these commands. publish, unpublish, block and unblock also work on another
host (`--host DEST`): the request is checked here, then portscope on that host makes it (core.fleet.change).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING, Any

from portscope.cli.output import add_output_option
from portscope.cli.sources import CHANGE_HELP, add_fleet_options, fleet_requested
from portscope.core.printable import printable

if TYPE_CHECKING:
    from portscope.core.fleet.destinations import Destination
    from portscope.core.publish.commit import Outcome
    from portscope.core.publish.ops import Change, ChangeAction, Request

#: `--backend` values (core.publish.backend.CHOICES, repeated so that `portscope list` imports no core.publish).
BACKEND_CHOICES = ("auto", "iptables-nft", "iptables-legacy", "nftables")
EXIT_CODES = """exit status:
  0  done (status: no drift)
  1  status: stored bindings and the kernel differ (drift); --host: that host could not run the change
  2  bad input, or the host port is taken (--force to publish anyway)
  4  not root
  5  the container engine cannot be reached
  6  the kernel refused a rule (nothing was changed), or this firewall backend cannot be written
"""


def add_publish_commands(sub: Any) -> None:
    """Register the publish family of subcommands on `sub` (the main parser's subparsers)."""

    def add(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        p.set_defaults(func=func)
        p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                       help="firewall backend (default auto: the stored bindings' one, else the engine's)")  # fmt: skip
        return p

    def add_change(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        p = add(name, help_text, func)
        p.add_argument("--dry-run", action="store_true", help="print the exact rules that would be written")
        p.add_argument("--json", action="store_true", help="print what was done (or would be) as one JSON object")
        add_fleet_options(p, CHANGE_HELP)
        return p

    p = add_change("publish", "publish a port of a running container with portscope's own rules", cmd_publish)
    # A spec starting with '-' and a digit (`-1:80`) is the spec, not an option: the command parses it and
    # names what is wrong in one line (argparse would print its usage). `-- SPEC` works too.
    p._negative_number_matcher = re.compile(r"^-[0-9]")
    p.add_argument("container", metavar="CONTAINER", help="container name, id prefix, or a plain IP address")
    p.add_argument("spec", metavar="[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]", help="as docker run -p")
    p.add_argument("--force", action="store_true", help="publish although the host port is in use")
    p.add_argument("--reason", metavar="TEXT", help="why (kept in the state and the audit log)")

    p = add_change("unpublish", "remove one of portscope's bindings", cmd_unpublish)
    p.add_argument("binding", metavar="BINDING", help="binding id (ps-xxxxxxxx) or HOST_PORT[/PROTO]")

    p = add_change(
        "block", "drop outside traffic to a port published by Docker (the container keeps running)", cmd_block
    )
    p.add_argument("binding", metavar="BINDING", help="a `portscope list` binding id or HOST_PORT[/PROTO]")
    p.add_argument("--reason", metavar="TEXT", help="why (kept in the state and the audit log)")

    p = add_change("unblock", "remove a block", cmd_unblock)
    p.add_argument("binding", metavar="BINDING", help="block id (ps-xxxxxxxx) or HOST_PORT[/PROTO]")

    p = add("apply", "re-create every stored binding (after a reboot, a flush, a daemon restart)", cmd_apply)
    p.add_argument("--dry-run", action="store_true", help="print the exact rules that would be written")

    p = add("reconcile", "move rules to containers' current addresses; flag removed containers", cmd_reconcile)
    p.add_argument("--dry-run", action="store_true", help="print the exact rules that would be written")

    p = add("status", "stored bindings against the kernel's rules (exit 1 on drift)", cmd_status)
    add_output_option(p, "portscope.status/1")

    add("watch", "reconcile on every container start/restart/die until SIGTERM or SIGINT", cmd_watch)


def _err(line: str) -> None:
    print(f"portscope: {printable(line)}", file=sys.stderr)


def _out(line: str) -> None:
    """A line of output with host text in it (container names, the state's who/why): control characters shown."""
    print(printable(line))


def _print_change(verb: str, change: Change, dry_run: bool) -> int:
    b = change.binding
    where = f" ({b.last_ip})" if b.last_ip and b.kind == "publish" and verb != "unpublished" else ""
    for line in change.warnings:
        _err(f"warning: {line}")
    for line in change.notes:
        _err(line)
    if dry_run:
        _out(f"# would be {verb}: {b.describe()}{where}")
        _print_batches(change.outcome)
    else:
        _out(f"{verb} {b.describe()}{where}")
    return 0


def _print_batches(outcome: Outcome) -> None:
    if not outcome.batches:
        print("# no rule changes")
    for family, batch in outcome.batches.items():
        if family == "nft-bridge":
            print("# nft -f - (the guard's bridge table, rolled back with the batches above if refused)")
        elif family == "nft":
            print("# nft -f - (one transaction, both families)")
        else:
            print(f"# {family}: restore --noflush")
        sys.stdout.write(batch)


def cmd_publish(args: argparse.Namespace) -> int:
    from portscope.core.publish import ops

    request = ops.parse_publish(args.container, args.spec, reason=args.reason, force=args.force)
    return _make("published", request, args)


def cmd_unpublish(args: argparse.Namespace) -> int:
    return _change("unpublish", "unpublished", args)


def cmd_block(args: argparse.Namespace) -> int:
    return _change("block", "blocked", args, reason=args.reason)


def cmd_unblock(args: argparse.Namespace) -> int:
    return _change("unblock", "unblocked", args)


def _change(action: ChangeAction, verb: str, args: argparse.Namespace, reason: str | None = None) -> int:
    """unpublish, block or unblock one binding: the request parsed, then planned and made (or previewed)."""
    from portscope.core.publish import ops

    request = ops.parse_change(action, args.binding, reason=reason)
    return _make(verb, request, args)


def _make(verb: str, request: Request, args: argparse.Namespace) -> int:
    """Make (or preview) a checked request: here, or with portscope on the one host `--host` names."""
    from portscope.core.publish import ops

    if fleet_requested(args):  # after the request's checks: bad input never connects
        from portscope.cli.fleet_cmd import change_destination

        dest = change_destination(args)
        if not dest.local:
            return _make_there(dest, request, args)
    change = ops.run(request, dry_run=args.dry_run, backend=args.backend)
    if args.json:
        from portscope.core.fleet.change import change_document

        _dump(change_document(request.action, change, dry_run=args.dry_run))
        return 0
    return _print_change(verb, change, args.dry_run)


def _make_there(dest: Destination, request: Request, args: argparse.Namespace) -> int:
    """The request made by portscope on `dest`: its JSON document with "host" added, or its text with each
    stderr line naming the host; its exit status. One line when it failed or the host cannot run it."""
    from portscope.core.fleet.change import remote_change, request_argv, run_on_host

    argv = request_argv(request, dry_run=args.dry_run, output_json=args.json, backend=args.backend)
    run = run_on_host(dest, argv, sudo=args.sudo, timeout=args.timeout)
    if args.json:
        result = remote_change(dest.text, run)
        if result.document is None:
            _err(result.message)
            return result.returncode
        _dump({**result.document, "host": dest.text})
        return 0
    if not run.ok:
        _err(run.message)
        return run.returncode
    for line in run.stderr.splitlines():
        if line.strip():
            _err(f"{dest.text}: {line.removeprefix('portscope: ')}")
    for line in run.stdout.splitlines():
        print("\t".join(printable(part) for part in line.split("\t")))  # the nft batches' tabs are kept
    return 0


def _dump(doc: dict[str, Any]) -> None:
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


def _converge(action: str, args: argparse.Namespace) -> int:
    from portscope.core.publish.maintain import converge

    report = converge(action, dry_run=args.dry_run, backend=args.backend)
    _print_report(report)
    if args.dry_run and report.outcome is not None:
        _print_batches(report.outcome)
    return 0


def _print_report(report: Any) -> None:
    for line in report.placement.notes:
        _err(line)
    for b, old, new in report.placement.moved:
        _out(f"moved {b.id} ({b.container_name}): {old} -> {new}")
    for b in report.placement.flagged:
        why = "is gone: binding kept, no rules" if b.health == "orphaned" else "is not running: no rules until it is"
        _out(f"flagged {b.id}: container {b.container_name} {why}")
    changed = report.outcome is not None and bool(report.outcome.batches)
    print(f"{len(report.bindings)} binding(s); rules {'rewritten' if changed else 'already in place'}")


def cmd_apply(args: argparse.Namespace) -> int:
    return _converge("apply", args)


def cmd_reconcile(args: argparse.Namespace) -> int:
    return _converge("reconcile", args)


def cmd_status(args: argparse.Namespace) -> int:
    from portscope.core.publish.maintain import status

    report = status(backend=args.backend)
    placed = {p.binding.id: p.target_ip for p in report.placement.placed}
    if args.output == "json":
        doc = {
            "schema": "portscope.status/1",
            "bindings": [{**b.to_dict(), "target_now": placed.get(b.id)} for b in report.bindings],
            "drift": report.drift,
            "backend": report.backend,
        }
        _dump(doc)
    else:
        for b in report.bindings:
            why = f"  # {b.why}" if b.why else ""
            _out(f"{b.describe()}  [{b.health}] {placed.get(b.id) or '-'}  {b.who} {b.when}{why}")
        if not report.bindings:
            print("no portscope bindings")
        for line in report.drift:
            _out(f"drift: {line}")
        if not report.drift:
            print(f"in sync with the kernel ({report.backend})")
    return 1 if report.drifted else 0


def cmd_watch(args: argparse.Namespace) -> int:
    from portscope.core.publish.watch import watch

    def show(result: Any) -> None:
        if isinstance(result, Exception):
            _err(f"reconcile failed: {result}")
        else:
            _print_report(result)
        sys.stdout.flush()

    return watch(on_reconcile=show, backend=args.backend)
