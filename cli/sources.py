"""Where a command's snapshot comes from: the live host, a capture file, and/or rule dumps."""

from __future__ import annotations

import argparse
import datetime as dt
import socket
from typing import NamedTuple

from portscope.core.errors import SnapshotError
from portscope.core.model import BackendStatus, HostFacts, Snapshot


def add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", metavar="FILE", help="work on a capture (from `portscope capture`)")
    parser.add_argument(
        "--rules",
        metavar="FILE",
        nargs="+",
        help="read rules from dumps (iptables-save, iptables -S, nft list, nft -j) instead of the kernel",
    )


#: The fleet options that take a value, and those that do not (main.py also accepts them before the command).
FLEET_VALUE_OPTIONS = ("--host", "--hosts", "--inventory", "--timeout")
FLEET_FLAGS = ("--sudo",)


class FleetHelp(NamedTuple):
    """The help texts of the fleet options, for reading hosts or for changing one."""

    title: str
    host: str
    hosts: str
    inventory: str
    sudo: str
    timeout: str


READ_HELP = FleetHelp(
    title="fleet (read other hosts over ssh; also before the command)",
    host="read this host over ssh (user@host, host:port, ssh://user@host:port, an ssh alias; `local` is this one); "
    "repeatable",
    hosts="read the hosts listed in FILE (one a line, # comments)",
    inventory="read the hosts of an Ansible inventory (needs ansible-inventory)",
    sudo="run the remote collector through `sudo -n`",
    timeout="each host's read (default 20)",
)
CHANGE_HELP = FleetHelp(
    title="another host (over ssh, portscope installed there; also before the command)",
    host="make the change on this host (user@host, host:port, ssh://user@host:port, an ssh alias; `local` is this "
    "one); one host only",
    hosts="the host listed in FILE (one destination)",
    inventory="the host of an Ansible inventory (one host)",
    sudo="run portscope there through `sudo -n`",
    timeout="how long portscope there may take (default 20)",
)


def add_fleet_options(parser: argparse.ArgumentParser, texts: FleetHelp = READ_HELP) -> None:
    """--host/--hosts/--inventory, --sudo and --timeout: read other hosts over ssh (cli.fleet_cmd), or, with
    `CHANGE_HELP`, make a change on one (cli.publish_cmds)."""
    group = parser.add_argument_group(texts.title)
    group.add_argument("--host", metavar="DEST", action="append", default=[], help=texts.host)
    group.add_argument("--hosts", metavar="FILE", help=texts.hosts)
    group.add_argument("--inventory", metavar="FILE", help=texts.inventory)
    group.add_argument("--sudo", action="store_true", help=texts.sudo)
    group.add_argument("--timeout", metavar="SECONDS", type=positive_seconds, default=20.0, help=texts.timeout)


def fleet_requested(args: argparse.Namespace) -> bool:
    """True when the command reads a fleet: hosts were named, or --snapshot is a fleet capture."""
    named = bool(getattr(args, "host", None) or getattr(args, "hosts", None) or getattr(args, "inventory", None))
    if named and (getattr(args, "snapshot", None) or getattr(args, "rules", None)):
        from portscope.core.fleet.destinations import DestinationError  # only a fleet needs it

        raise DestinationError("--host/--hosts/--inventory read live hosts: leave out --snapshot and --rules")
    return named or _is_fleet_capture(getattr(args, "snapshot", None))


def _is_fleet_capture(path: str | None) -> bool:
    """A fleet capture is a JSON list (a host's capture is an object): its first character says which."""
    if not path:
        return False
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096).lstrip()
    except (OSError, UnicodeDecodeError):
        return False  # read_capture says what is wrong with it
    return head.startswith("[")


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def load_snapshot(args: argparse.Namespace, scope: str = "all") -> Snapshot:
    """The snapshot the options ask for; the live host when neither --snapshot nor --rules is given.

    `scope="nat"` reads native nftables tables only as far as bindings need (for `list`)."""
    if args.snapshot:
        from portscope.core.snapshot import read_capture

        snap = read_capture(args.snapshot)
    elif args.rules:
        snap = _empty_snapshot()
    else:
        from portscope.core.live import read_live

        snap = read_live(scope=scope)
    if args.rules:
        _replace_rules(snap, args.rules, nat_only=scope == "nat")
    return snap


def _empty_snapshot() -> Snapshot:
    """A snapshot with no host data: rule dumps alone say nothing about sockets or containers."""
    host = HostFacts(hostname=socket.gethostname(), kernel="", is_root=False)
    return Snapshot(host=host, taken_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def _replace_rules(snap: Snapshot, paths: list[str], nat_only: bool = False) -> None:
    """The dumps' rules replace the snapshot's; `nat_only`: only what bindings come from is kept."""
    from portscope.core.rules.formats import load_dump, parse_source  # only for --rules

    sources, tables, skipped = [], [], [0]
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as exc:
            raise SnapshotError(f"cannot read rule dump {path}: {exc.strerror} (check the path)") from None
        source = load_dump(path, text)
        del text
        tables.extend(parse_source(source, skipped if nat_only else None))
        sources.append(source)
    snap.sources, snap.tables = sources, tables
    count = sum(c.size for t in tables for c in t.chains.values()) + skipped[0]
    snap.backends = [BackendStatus("dump", None, read=True, rules=count, reason=", ".join(paths))]
    snap.warnings = [w for w in snap.warnings if "firewall" not in w]
