"""A fleet capture for the TUI tests, written as `portscope capture --host ...` writes one, and apps over it.

h1 is the shipped sample; ops@h2 is the sample as a read with Docker's userland-proxy rules sees it (other
reaches, the same containers); h3 could not be read. The file is read back by the CLI's own
`read_fleet_capture`, as `portscope --snapshot fleet.json` opens it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from functools import partial
from pathlib import Path

from portscope.cli.fleet_cmd import read_fleet_capture
from portscope.core.fleet.read import HostRead
from portscope.core.snapshot import read_capture, snapshot_to_dict, write_json_file
from portscope.tui.fleet_app import FleetApp, capture_reader
from portscope.tui.remote_changes import HostChanges
from tests.tui.conftest import SAMPLE, limited_reach

FLEET = ("h1", "ops@h2", "h3")
H3_ERROR = "h3: cannot connect: No route to host (check that `ssh h3` works without a prompt)"


def write_fleet_capture(path: Path) -> Path:
    """The fleet capture document (cli.fleet_cmd.write_fleet_capture's), from the sample."""
    sample = read_capture(str(SAMPLE))
    doc = [
        {"host": "h1", "reachable": True, "error": None, "read_seconds": 0.412, "capture": snapshot_to_dict(sample)},
        {"host": "ops@h2", "reachable": True, "error": None, "read_seconds": 0.538,
         "capture": snapshot_to_dict(limited_reach(sample))},
        {"host": "h3", "reachable": False, "error": H3_ERROR, "read_seconds": 0.004, "capture": None},
    ]  # fmt: skip
    write_json_file(doc, str(path))
    return path


class CountingReader:
    """The capture's reads, as `read_hosts` gives them; records which hosts each read asked for (None: all)."""

    def __init__(self, path: Path) -> None:
        self.read = capture_reader(partial(read_fleet_capture, str(path)))
        self.asked: list[frozenset[str] | None] = []

    def __call__(self, hosts: Collection[str] | None) -> Iterator[HostRead]:
        self.asked.append(None if hosts is None else frozenset(hosts))
        return self.read(hosts)


def capture_fleet_app(path: Path) -> FleetApp:
    """The app as `portscope --snapshot fleet.json` opens it."""
    reads = read_fleet_capture(str(path))
    reader = capture_reader(partial(read_fleet_capture, str(path)))
    return FleetApp(reader, [r.host for r in reads], refresh=0, source=str(path))


def live_fleet_app(path: Path, changes: Callable[[str], HostChanges] | None = None) -> tuple[FleetApp, CountingReader]:
    """The app as live over the fleet (the hosts' reads come from the capture), with injected changes."""
    reader = CountingReader(path)
    return FleetApp(reader, list(FLEET), refresh=0, changes=changes), reader
