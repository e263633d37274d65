"""`portscope recreate CONTAINER [--add SPEC]… [--remove SPEC]… [--dry-run]` and `portscope recreate --resume`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from portscope.core.printable import printable

EXIT_CODES = """exit status:
  0  done (or, with --dry-run, the plan is possible)
  2  bad input, a refused container (Compose, host network, --rm), or a host port that is taken
  4  not root
  5  the engine cannot be reached, or a step failed (the original container was put back)
"""
DESCRIPTION = """Recreate a container with another set of published ports, keeping everything else
(image, command, env, mounts and anonymous volumes' data, networks and aliases, health check,
restart policy, limits...). The new host ports are checked first; the old container is stopped,
renamed aside, replaced, and removed only once the new one runs (and is healthy). Any failure puts
the original back. SPEC is docker's -p syntax: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]."""


def add_recreate_command(sub: Any) -> None:
    """Register `recreate` on the main parser's subparsers."""
    p = sub.add_parser(
        "recreate", help="recreate a container with other published ports (the Docker way, lossless)",
        description=DESCRIPTION, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.set_defaults(func=cmd_recreate)
    p.add_argument("container", metavar="CONTAINER", nargs="?", help="container name or id")
    p.add_argument("--add", metavar="SPEC", action="append", default=[], help="a port to publish (as docker run -p)")
    p.add_argument("--remove", metavar="SPEC", action="append", default=[],
                   help="a published port to drop (CONTAINER_PORT[/PROTO] drops all its bindings)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the plan and the `docker run` equivalent")
    p.add_argument("--force", action="store_true", help="recreate although an added host port is in use")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="how long to wait for the new container to run (and be healthy)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="finish or undo a recreate that was interrupted")
    p.add_argument("--adopt", metavar="BINDING",
                   help="turn portscope's binding (ps-xxxxxxxx) into a Docker port of its container")  # fmt: skip


def cmd_recreate(args: argparse.Namespace) -> int:
    from portscope.core.publish.errors import InputError
    from portscope.core.publish.spec import parse_port_spec
    from portscope.core.publish.world import require_root
    from portscope.core.recreate import run
    from portscope.core.recreate.plan import PortChange

    if args.resume:
        if args.container or args.add or args.remove or args.adopt:
            raise InputError("--resume takes no container or ports: it finishes the interrupted recreate")
        require_root("recreate --resume")
        print(run.resume())
        return 0
    if args.adopt:
        if args.container or args.add or args.remove:
            raise InputError("--adopt takes only the binding: portscope recreate --adopt ps-xxxxxxxx")
        adopted = run.adoption(args.adopt, dry_run=args.dry_run)
        request = replace(adopted, force=args.force, timeout=args.timeout)
    else:
        if not args.container:
            raise InputError("name the container: portscope recreate CONTAINER --add SPEC | --remove SPEC")
        if not (args.add or args.remove):
            raise InputError("nothing to change: give --add SPEC and/or --remove SPEC")
        change = PortChange(
            add=tuple(parse_port_spec(s) for s in args.add), remove=tuple(parse_port_spec(s) for s in args.remove)
        )
        request = run.RecreateRequest(
            container=args.container, change=change, dry_run=args.dry_run, force=args.force, timeout=args.timeout
        )
    if not args.dry_run:
        require_root("recreate")
    outcome = run.recreate(request)
    if request.adopt and not args.dry_run:
        note = run.drop_adopted(request.adopt)
        if note:
            print(f"warning: {printable(note)}", file=sys.stderr)
    for warning in outcome.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    if args.dry_run:
        print("\n".join(printable(line) for line in outcome.lines))
    else:
        new = (outcome.new_id or "")[:12]
        print(f"recreated {printable(outcome.plan.name)} ({outcome.plan.old_id[:12]} -> {new})")
    return 0
