"""Changes on a fleet's host from the TUI: portscope's own on this host, or portscope run on another one.

For another host the request is checked here (`publish_support.core_request`: core's parsers), then made by
`core.fleet.change.change_on_host` (a dry run for the preview, then the commit), and portscope's stored
bindings there are read with its `status --json`; each runs in a worker of the screen that asks. A host
that refuses or cannot run the change raises `RemoteChangeError` with its one line, which the screens show
as they show core's refusals. No Textual here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from portscope.core.errors import PortscopeError
from portscope.core.fleet.change import RemoteChange, change_on_host, stored_on_host
from portscope.core.fleet.destinations import Destination
from portscope.core.fleet.read import DEFAULT_TIMEOUT
from portscope.core.publish.model import StoredBinding
from portscope.tui.publish_support import (
    Applier,
    ChangeRequest,
    PublishRequest,
    Reported,
    apply_change,
    core_request,
    preview_change,
    read_stored,
)
from portscope.tui.recreate_support import Recreator, recreate_container


class RemoteChangeError(PortscopeError):
    """Another host refused a change, or could not run it: the one line to show."""


@dataclass(frozen=True, slots=True)
class HostChanges:
    """How the screens change one host: dry run and commit, its stored bindings, and recreate (None: not offered)."""

    preview: Applier
    apply: Applier
    read_state: Callable[[], list[StoredBinding]]
    recreate: Recreator | None = None


#: This host: core's own steps, as the single-host TUI makes them.
LOCAL = HostChanges(preview=preview_change, apply=apply_change, read_state=read_stored, recreate=recreate_container)


@dataclass(frozen=True, slots=True)
class RemoteHost:
    """portscope on another host, over the fleet's ssh (`--sudo` and `--timeout` as for the reads)."""

    dest: Destination
    sudo: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def changes(self) -> HostChanges:
        """The host's changes (recreate is not offered on another host)."""
        return HostChanges(preview=self.preview, apply=self.apply, read_state=self.read_state)

    def preview(self, request: ChangeRequest) -> Reported:
        return self._run(request, dry_run=True)

    def apply(self, request: ChangeRequest) -> Reported:
        return self._run(request, dry_run=False)

    def _run(self, request: ChangeRequest, *, dry_run: bool) -> Reported:
        result = change_on_host(self.dest, core_request(request), dry_run=dry_run, sudo=self.sudo,
                                timeout=self.timeout)  # fmt: skip
        return remote_report(request, result)

    def read_state(self) -> list[StoredBinding]:
        return stored_on_host(self.dest, sudo=self.sudo, timeout=self.timeout)


def remote_report(request: ChangeRequest, result: RemoteChange) -> Reported:
    """What the host's portscope reported for `request`; RemoteChangeError with its one line when it refused."""
    doc = result.document
    if not result.ok or doc is None:
        raise RemoteChangeError(result.message or f"{result.host}: the change failed (exit {result.returncode})")
    if isinstance(request, PublishRequest):
        port = doc.get("host_port")
        what = replace(request, host_port=port if isinstance(port, int) else request.host_port).describe()
    else:
        what = request.subject
    return Reported(
        subject=f"{doc.get('binding') or '?'} {what} on {result.host}",
        added=_lines(doc.get("added")),
        removed=_lines(doc.get("removed")),
        warnings=_lines(doc.get("warnings")),
        notes=_lines(doc.get("notes")),
    )


def _lines(value: object) -> tuple[str, ...]:
    return tuple(str(line) for line in value) if isinstance(value, list) else ()


def host_changes(dest: Destination, *, sudo: bool = False, timeout: float = DEFAULT_TIMEOUT) -> HostChanges:
    """How to change `dest`: this host's own way for `local`, else portscope run there."""
    return LOCAL if dest.local else RemoteHost(dest, sudo=sudo, timeout=timeout).changes()
