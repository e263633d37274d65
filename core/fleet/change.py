"""Changing another host's rules: portscope itself, run on that host through the collector's `portscope` op.

Reading a host needs nothing installed there; changing one does, because its state, lock, audit log and the
service that keeps its rules across restarts live on that host. The request is parsed and checked here first
(`parse_publish` / `parse_change`); `request_argv` turns it back into portscope's own arguments, which travel as a
JSON list to the collector and are run there without a shell, a terminal or any input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from portscope.core.errors import PortscopeError
from portscope.core.fleet.destinations import Destination
from portscope.core.fleet.read import DEFAULT_TIMEOUT
from portscope.core.fleet.transport import HostError, Session
from portscope.core.printable import printable
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.ops import Action, Change, PublishRequest, Request

#: The exit status of a change the host could not run (unreachable, no python3, sudo refused, no portscope there,
#: no answer in time); otherwise the remote portscope's own status is passed on.
HOST_FAILURE = 1
#: What the collector answers for a command that ran out of time (as its `run` op does).
TIMED_OUT = 124
#: What the collector answers when portscope was found there but could not be started (its OSError).
NOT_STARTED = 127
#: ssh's time to connect and start the collector, on top of the remote command's own `timeout`.
CONNECT_ALLOWANCE = 10.0


@dataclass(frozen=True, slots=True)
class RemoteRun:
    """What portscope printed on the other host, and its exit status; `message` is the one line to show when
    it failed or could not run ("" when it succeeded)."""

    returncode: int
    stdout: str
    stderr: str
    message: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True, slots=True)
class RemoteChange:
    """A change made (or previewed) on one host."""

    host: str  # the destination as given
    returncode: int  # the remote portscope's exit status (the CLI's codes), or HOST_FAILURE
    document: dict[str, Any] | None  # the `--json` document (change_document), None when there is none
    message: str  # one line: the error to show ("" when ok)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def request_argv(request: Request, *, dry_run: bool, output_json: bool = True, backend: str = "auto") -> list[str]:
    """portscope's own command line for `request` (options first, then `--` and the operands): parsed by the
    CLI's parser, it gives back the same request."""
    options = ["--json"] if output_json else []
    if dry_run:
        options.append("--dry-run")
    if backend != "auto":
        options += ["--backend", backend]
    if isinstance(request, PublishRequest):
        if request.force:
            options.append("--force")
        if request.reason is not None:
            options.append(f"--reason={request.reason}")  # one word: a reason may start with '-'
        return ["publish", *options, "--", request.target, str(request.spec)]
    if request.reason is not None:  # only block takes a reason
        options.append(f"--reason={request.reason}")
    return [request.action, *options, "--", request.text]


def run_on_host(
    dest: Destination, argv: list[str], *, sudo: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> RemoteRun:
    """`portscope ARGV` on `dest` (not `local`), bounded by `timeout` seconds; never raises for a host problem."""
    name = dest.text
    try:
        with Session(dest, timeout + CONNECT_ALLOWANCE, sudo=sudo) as session:
            reply = session.exchange({"op": "portscope", "args": argv, "timeout": timeout})
    except HostError as exc:
        return RemoteRun(HOST_FAILURE, "", "", printable(str(exc)))
    error = reply.get("error")
    if error == "missing":
        why = f"{name}: portscope is not installed there: install it there to change its rules (reading needs nothing)"
        return RemoteRun(HOST_FAILURE, "", "", why)
    if error is not None or not isinstance(reply.get("returncode"), int):
        return RemoteRun(HOST_FAILURE, "", "", f"{name}: the collector failed: {printable(error)}")
    code, stdout, stderr = reply["returncode"], str(reply.get("stdout", "")), str(reply.get("stderr", ""))
    if code == TIMED_OUT:
        why = f"{name}: portscope there did not finish within {timeout:g} s (check the host, or raise --timeout)"
        return RemoteRun(HOST_FAILURE, stdout, stderr, why)
    if code == NOT_STARTED:
        why = f"{name}: portscope there could not be started ({last_line(stderr)}): check its installation there"
        return RemoteRun(HOST_FAILURE, stdout, stderr, why)
    message = "" if code == 0 else f"{name}: {last_line(stderr) or f'portscope there ended with exit status {code}'}"
    return RemoteRun(code, stdout, stderr, message)


def last_line(stderr: str) -> str:
    """The last line portscope wrote to stderr, without its `portscope: ` prefix, control characters shown."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return printable(lines[-1].removeprefix("portscope: ")) if lines else ""


def change_on_host(
    dest: Destination, request: Request, *, dry_run: bool, sudo: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> RemoteChange:
    """Make (or, `dry_run`, preview) an already checked `request` on `dest`, another host (`local` is changed by
    `ops.run` itself). Never raises for a host problem: `message` says what to do in one line."""
    run = run_on_host(dest, request_argv(request, dry_run=dry_run), sudo=sudo, timeout=timeout)
    return remote_change(dest.text, run)


def remote_change(host: str, run: RemoteRun) -> RemoteChange:
    """The change a run of `request_argv(..., output_json=True)` on `host` reports."""
    if not run.ok:
        return RemoteChange(host, run.returncode, None, run.message)
    try:
        document = json.loads(run.stdout)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        why = f"{host}: portscope there printed no JSON document: update it there"
        return RemoteChange(host, HOST_FAILURE, None, why)
    return RemoteChange(host, 0, document, "")


def stored_on_host(dest: Destination, *, sudo: bool = False, timeout: float = DEFAULT_TIMEOUT) -> list[StoredBinding]:
    """portscope's stored bindings on `dest` (`portscope status --json` there; exit 1 is drift, still read);
    PortscopeError with the one line to show when they cannot be read."""
    run = run_on_host(dest, ["status", "--json"], sudo=sudo, timeout=timeout)
    try:
        document = json.loads(run.stdout) if run.returncode in (0, 1) else None
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("bindings"), list):
        raise PortscopeError(run.message or f"{dest.text}: portscope status printed no JSON document")
    return [StoredBinding.from_dict(entry) for entry in document["bindings"] if isinstance(entry, dict)]


def change_document(action: Action, change: Change, *, dry_run: bool) -> dict[str, Any]:
    """What `portscope publish|unpublish|block|unblock --json` prints: the binding, the rule lines added and
    removed (to be, with `dry_run`), and the notes and warnings."""
    binding = change.binding
    return {
        "action": action,
        "dry_run": dry_run,
        "binding": binding.id,
        "host_port": binding.host_port or None,
        "added": list(change.outcome.added),
        "removed": list(change.outcome.removed),
        "notes": list(change.notes),
        "warnings": list(change.warnings),
    }
