"""Helpers for the publish form and the unpublish/block confirmation: pure, no Textual.

Every field check calls core.publish's own validators (`validate`, `spec`, `targets`), so the form shows
the same one-line messages the CLI prints. The changes themselves (`apply_change`, `preview_change`,
`read_stored`) are the only I/O: core's steps as the CLI runs them (`ops.parse_*`, then `ops.run`: plan,
then preview or commit), in a worker thread; the app takes them as arguments, so tests inject their own.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from rich.text import Text

from portscope.core.errors import PortscopeError
from portscope.core.model import Binding, Container, Family, HostFacts, Snapshot, bracket, port_text
from portscope.core.printable import printable
from portscope.core.publish import ops, state, validate
from portscope.core.publish.errors import InputError
from portscope.core.publish.model import StoredBinding, binding_id
from portscope.core.publish.ops import Change
from portscope.core.publish.spec import PortSpec
from portscope.core.publish.targets import container_target
from portscope.core.publish.validate import PROTOCOLS, check_container_ref, check_reason, parse_port, parse_protocol
from portscope.tui.data import ip_key

ALL_ADDRESSES = "0.0.0.0"
ALL_LABEL = "all addresses (0.0.0.0)"
ALL_WARNING = (
    "All addresses: the port will be open to every network this host is on (LAN, VPN, internet), "
    "past the host's INPUT rules"
)
LOOPBACK = "127.0.0.1"
#: The form's fields, in order (also the ids of their widgets).
FIELDS = ("container", "host-ip", "host-port", "container-port", "protocol", "reason")

Action = Literal["unpublish", "block", "unblock"]
VERBS: dict[str, str] = {"publish": "Published", "unpublish": "Unpublished", "block": "Blocked", "unblock": "Unblocked"}
TITLES: dict[str, str] = {"unpublish": "Unpublish", "block": "Block", "unblock": "Unblock"}


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """What the form asks for: `portscope publish CONTAINER SPEC [--reason REASON]`."""

    container: str  # the container's name (core finds it by exact name first)
    host_ip: str
    host_port: int | None  # None: an ephemeral port, picked by core as Docker does
    container_port: int
    protocol: str = "tcp"
    reason: str | None = None

    @property
    def spec(self) -> PortSpec:
        return PortSpec(
            container_port=self.container_port, protocol=self.protocol, host_ip=self.host_ip, host_port=self.host_port
        )

    @property
    def spec_text(self) -> str:
        """The `-p` text core parses (e.g. `0.0.0.0:8081:80/tcp`, `127.0.0.1::80/udp`)."""
        return str(self.spec)

    def describe(self) -> str:
        port = self.host_port if self.host_port is not None else "auto"
        return f"{bracket(self.host_ip)}:{port}/{self.protocol} → {self.container}:{self.container_port}"


@dataclass(frozen=True, slots=True)
class BindingChange:
    """What `x` does to one binding of the Ports view: `portscope unpublish|block|unblock REF`."""

    action: Action
    ref: str  # what core is given: a portscope id, or the `list` binding id for a block
    subject: str  # the binding as the Ports view shows it: `0.0.0.0:8080/tcp → web:80`
    owner: str

    def describe(self) -> str:
        return f"{self.action} {self.ref}"


ChangeRequest = PublishRequest | BindingChange


@dataclass(frozen=True, slots=True)
class Reported:
    """A change as another host's portscope reported it (its `--json` document): what `preview_text` and
    `done_text` show of a core `Change` made here."""

    subject: str  # `ps-1a2b3c4d 0.0.0.0:8081/tcp → web:80`
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


#: Runs one change (for real, or as a dry run) and reports it: core's `Change` here, `Reported` from another host.
Applier = Callable[[ChangeRequest], "Change | Reported"]


# --------------------------------------------------------------------------- the real changes (run in a worker)


def core_request(request: ChangeRequest) -> ops.Request:
    """Core's parsed request for `request`: what `portscope publish|unpublish|block|unblock` parse."""
    if isinstance(request, PublishRequest):
        return ops.parse_publish(request.container, request.spec_text, reason=request.reason)
    return ops.parse_change(request.action, request.ref)


def run_change(request: ChangeRequest, *, dry_run: bool) -> Change:
    """Core's steps for `request`: parse, then plan and preview (`dry_run`) or commit, as the CLI runs them."""
    return ops.run(core_request(request), dry_run=dry_run)


def apply_change(request: ChangeRequest) -> Change:
    """Make the change (root; under core's lock; all-or-nothing)."""
    return run_change(request, dry_run=False)


def preview_change(request: ChangeRequest) -> Change:
    """The change's exact rules, computed without changing anything (`--dry-run`)."""
    return run_change(request, dry_run=True)


def read_stored() -> list[StoredBinding]:
    """portscope's stored publishes and blocks (core's state file; empty when there is none yet)."""
    return state.load(state.state_dir()).bindings


# --------------------------------------------------------------------------- may the host be changed at all?


def change_refusal(source: str | None, snap: Snapshot | None) -> str | None:
    """Why nothing can be changed from here (a capture, not root, no data yet), or None."""
    if source is not None:
        return (
            f"{os.path.basename(source)} is a capture: it cannot be changed. "
            "Run portscope on the host itself (as root) to publish, unpublish or block ports"
        )
    if snap is None:
        return "No data yet: wait for the first read"
    if not snap.host.is_root:
        return "Publishing, unpublishing and blocking write the firewall: run portscope as root (sudo portscope)"
    return None


def host_refusal(host: str, snap: Snapshot | None, error: str | None, *, local: bool) -> str | None:
    """Why a fleet's host cannot be changed from here (not read, not root there), or None."""
    if snap is None:
        return f"{host} is not read ({error or 'no answer yet'}): r reads it again"
    if snap.host.is_root:
        return None
    if local:
        return change_refusal(None, snap)
    return f"{host}: the ssh login there is not root: log in as root, or give --sudo, to change its rules"


# --------------------------------------------------------------------------- the form's choices and checks


def running(snap: Snapshot) -> list[Container]:
    """The containers a port can be published to (running), by name."""
    return sorted((c for c in snap.containers if c.state == "running"), key=lambda c: c.name.casefold())


def container_options(snap: Snapshot) -> list[tuple[str, str]]:
    """(label, container id) for the container picker: `web  172.17.0.2`."""
    out = []
    for c in running(snap):
        ips = ", ".join(ip for n in c.networks for ip in (n.ipv4, n.ipv6) if ip) or c.network_mode
        out.append((f"{c.name}  {ips}", c.id))
    return out


def address_options(host: HostFacts) -> list[tuple[str, str]]:
    """(label, address) for the host address picker: all addresses, then each of the host's, by number."""
    names = {cidr.split("/")[0]: iface for iface, cidr in host.networks}
    out = [(ALL_LABEL, ALL_ADDRESSES)]
    for addr in sorted(dict.fromkeys(host.addresses), key=ip_key):
        if addr in (ALL_ADDRESSES, "::"):
            continue
        if addr == LOOPBACK:
            out.append((f"{addr} (this host only)", addr))
        else:
            out.append((f"{addr} ({names[addr]})" if addr in names else addr, addr))
    return out


def default_address(host: HostFacts) -> str:
    """127.0.0.1 when the host has it (nothing is opened to a network by accident), else all addresses."""
    return LOOPBACK if LOOPBACK in host.addresses else ALL_ADDRESSES


def not_offered(snap: Snapshot, container_id: str | None) -> str | None:
    """Core's reason why a container the user pointed at is not in the picker (it is not running), or None."""
    c = next((c for c in snap.containers if c.id == container_id), None)
    if c is None or c.state == "running":
        return None
    return _message(lambda: container_target(c, "ipv4", snap.host))


def protocol_options() -> list[tuple[str, str]]:
    """tcp, udp, sctp: exactly core's protocols (nothing else can be chosen)."""
    return [(p, p) for p in PROTOCOLS]


@dataclass(frozen=True, slots=True)
class FormValues:
    """The form's fields as they stand (text fields unparsed)."""

    container_id: str | None
    host_ip: str
    host_port: str = ""
    container_port: str = ""
    protocol: str = "tcp"
    reason: str = ""

    def by_field(self) -> dict[str, object]:
        return {
            "container": self.container_id,
            "host-ip": self.host_ip,
            "host-port": self.host_port,
            "container-port": self.container_port,
            "protocol": self.protocol,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Checked:
    """The request the fields make, or None; and one message per field that is wrong."""

    request: PublishRequest | None
    errors: dict[str, str]


def check_host_address(text: str, host: HostFacts) -> str:
    """Core's check of a host address: an address of this host, 0.0.0.0/::, or 127.0.0.1 (never ::1)."""
    return validate.check_host_address(text, host.addresses)


def _message(check: Callable[[], object]) -> str | None:
    try:
        check()
    except InputError as exc:
        return str(exc)
    return None


def check_form(values: FormValues, snap: Snapshot) -> Checked:
    """Every field through core's validators; the request when all pass (its `-p` text re-parsed by core)."""
    errors: dict[str, str] = {}
    container = next((c for c in snap.containers if c.id == values.container_id), None)
    if container is None:
        errors["container"] = "choose a running container"
    elif msg := _message(lambda: check_container_ref(container.name)):
        errors["container"] = msg
    host_ip = values.host_ip
    if msg := _message(lambda: check_host_address(host_ip, snap.host)):
        errors["host-ip"] = msg
    elif container is not None and "container" not in errors:
        family: Family = "ipv6" if ipaddress.ip_address(host_ip).version == 6 else "ipv4"
        if msg := _message(lambda: container_target(container, family, snap.host)):
            errors["container"] = msg
    host_port = values.host_port.strip()
    if host_port and (msg := _message(lambda: parse_port(host_port, "host port"))):
        errors["host-port"] = msg
    if msg := _message(lambda: parse_port(values.container_port.strip(), "container port")):
        errors["container-port"] = msg
    if msg := _message(lambda: parse_protocol(values.protocol)):
        errors["protocol"] = msg
    if msg := _message(lambda: check_reason(values.reason or None)):
        errors["reason"] = msg
    if errors or container is None:
        return Checked(None, errors)
    request = PublishRequest(
        container=container.name,
        host_ip=host_ip,
        host_port=int(host_port) if host_port else None,
        container_port=int(values.container_port.strip()),
        protocol=parse_protocol(values.protocol),
        reason=values.reason or None,
    )
    try:
        core_request(request)  # what the change will parse: it must read the same
    except InputError as exc:
        return Checked(None, {"host-port": str(exc)})
    return Checked(request, {})


def missing_text(errors: dict[str, str]) -> Text:
    """The preview area while the fields do not make a request yet."""
    names = {
        "container": "container",
        "host-ip": "host address",
        "host-port": "host port",
        "container-port": "container port",
        "protocol": "protocol",
        "reason": "reason",
    }
    which = ", ".join(names[f] for f in FIELDS if f in errors)
    return Text(f"The exact rules appear here once the fields are right (to fix: {which}).", style="dim")


# --------------------------------------------------------------------------- unpublish / block / unblock


def where(b: Binding) -> str:
    return f"{bracket(b.host_ip)}:{port_text(b.host_port, b.host_port_last)}/{b.protocol}"


def subject(b: Binding) -> str:
    to = b.container_name or bracket(b.target_ip) or "?"
    return f"{where(b)} → {to}:{port_text(b.target_port, b.target_port_last)}"


def _same_host(a: str, b: str) -> bool:
    try:
        va, vb = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return a == b
    return va == vb or (va.version == vb.version and (va.is_unspecified or vb.is_unspecified))


def plan_change(b: Binding, stored: Iterable[StoredBinding]) -> BindingChange:
    """portscope's own binding: unpublish it; another owner's: block it, or unblock it when core's state
    holds a block of it (the id core gives that block: `binding_id("block", host address, port, proto)`)."""
    stored = list(stored)
    if b.owner == "portscope":
        mine = [
            s
            for s in stored
            if s.kind == "publish"
            and s.protocol == b.protocol
            and s.host_port == b.host_port
            and _same_host(s.host_ip, b.host_ip)
        ]
        ref = mine[0].id if len(mine) == 1 else f"{bracket(b.host_ip)}:{b.host_port}/{b.protocol}"
        return BindingChange(action="unpublish", ref=ref, subject=subject(b), owner=b.owner)
    block_id = binding_id("block", b.host_ip, b.host_port or 0, b.protocol)
    if any(s.kind == "block" and s.id == block_id for s in stored):
        return BindingChange(action="unblock", ref=block_id, subject=subject(b), owner=b.owner)
    return BindingChange(action="block", ref=b.id, subject=subject(b), owner=b.owner)


def explanation(change: BindingChange) -> list[str]:
    """What the change does, in a few lines, for the confirmation."""
    if change.action == "unpublish":
        return [
            "portscope published this port: unpublishing removes exactly the rules below, and the port closes.",
            "Publishing it again (a) puts them back.",
        ]
    if change.action == "unblock":
        return [
            f"portscope blocks outside traffic to this port ({change.ref}): unblocking removes that DROP rule,",
            "so the port is reachable from other hosts again.",
        ]
    if change.owner in ("docker", "podman"):
        how = "recreating the container without this -p (docker rm, then docker run)"
    elif change.owner == "manual":
        how = "removing the hand-made rule that publishes it"
    else:
        how = f"changing it where {change.owner} manages it"
    return [
        f"{change.owner} published this port, not portscope: unpublishing it needs {how}.",
        "Block drops outside traffic to it instead (one DROP rule); the container keeps running, and the",
        "block is reversible: x on this binding again unblocks it.",
    ]


# --------------------------------------------------------------------------- what a dry run / a change reports


def reported(change: Change | Reported) -> Reported:
    """What the TUI shows of a change, made here (core's `Change`) or on another host (`Reported` already)."""
    if isinstance(change, Reported):
        return change
    return Reported(
        subject=change.binding.describe() if change.binding is not None else "",
        added=tuple(change.outcome.added),
        removed=tuple(change.outcome.removed),
        warnings=tuple(change.warnings),
        notes=tuple(change.notes),
    )


def preview_text(change: Change | Reported, action: str) -> Text:
    """A dry run's report: the binding, every rule line removed and added, core's warnings and notes."""
    change = reported(change)
    out = Text()
    if change.subject:
        out.append(f"would {action}: ", style="bold")
        out.append(printable(change.subject))
        out.append("\n")
    removed, added = change.removed, change.added
    if not removed and not added:
        out.append("no rule changes: the firewall already holds exactly this\n", style="dim")
    for line in removed:
        out.append(f"- {printable(line)}\n", style="red")
    for line in added:
        out.append(f"+ {printable(line)}\n", style="green")
    for line in change.warnings:
        out.append(f"⚠ {printable(line)}\n", style="yellow")
    for line in change.notes:
        out.append(f"{printable(line)}\n", style="dim")
    out.rstrip()
    return out


def refused_text(message: str) -> Text:
    """A dry run core refused: its one-line reason (a port taken, a finding, a container that cannot be a target)."""
    out = Text("✖ refused: ", style="bold red")
    out.append(printable(message), style="red")
    return out


def rule_lines(change: Change | Reported) -> list[str]:
    """The preview's rule lines, as `preview_text` shows them."""
    change = reported(change)
    return [f"- {line}" for line in change.removed] + [f"+ {line}" for line in change.added]


def error_line(err: BaseException | None) -> str:
    """One line for a failed change: core's message, else the exception's."""
    if err is None:
        return "unknown error"
    if isinstance(err, PortscopeError):
        text = str(err)
    elif isinstance(err, OSError):
        text = err.strerror or str(err)
    else:
        text = f"{type(err).__name__}: {err}"
    return (text.strip().splitlines() or [type(err).__name__])[0]


def done_text(action: str, change: Change | Reported, fallback: str) -> str:
    """The notification after a change: `Published ps-1a2b3c4d publish 0.0.0.0:8081/tcp -> web:80`, then the
    warnings and notes of a change another host's portscope made."""
    shown = reported(change)
    text = f"{VERBS[action]} {shown.subject or fallback}"
    if isinstance(change, Reported):
        text = "\n".join([text, *(f"⚠ {line}" for line in change.warnings), *change.notes])
    return text
