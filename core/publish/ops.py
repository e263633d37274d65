"""publish, unpublish, block and unblock, in three steps, each a function of the one before:

1. `parse_publish` / `parse_change`: the user's text, checked, into a request (pure; nothing is read);
2. `plan(request, world, current)`: the target, a free host port, the conflicts, the bindings to keep (pure
   given the world and the state read under the lock);
3. `preview(plan, world)`: the exact rules, nothing written (`--dry-run`, the TUI's preview); or
   `commit(plan, world, current, folder)`: the rules written in one atomic change, the state stored, the audit line.

`run(request)` takes the lock, reads the state and the world, and does 2 and 3.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from portscope.core.inventory import build_inventory
from portscope.core.model import Binding, Family, bracket
from portscope.core.publish import audit, state
from portscope.core.publish.commit import Outcome
from portscope.core.publish.errors import ConflictError, InputError, RuleRefusedError
from portscope.core.publish.focus import check_port, focus
from portscope.core.publish.freeport import pick_port, taken_ports
from portscope.core.publish.model import State, StoredBinding, binding_id
from portscope.core.publish.placement import place_all
from portscope.core.publish.render import Placed
from portscope.core.publish.spec import BindingRef, PortSpec, parse_binding_ref, parse_port_spec
from portscope.core.publish.targets import Target, bridge_for, container_target, find_container
from portscope.core.publish.validate import (
    check_container_ref,
    check_host_address,
    check_reason,
    check_target_address,
    parse_address,
)
from portscope.core.publish.world import World, read_world, require_root, set_route_localnet

_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+){3}")
#: The protocol and (first) host port of a `portscope list` binding id: `ipv4/tcp/0.0.0.0:8080->...`.
_LIST_ID = re.compile(r"ipv[46]/([a-z0-9]+)/(?:\[[^\]]*\]|[^/:\[\]]+):([0-9]+)(?:-[0-9]+)?->.*")
#: Test hook: extra restore lines per table, appended to the IPv4 batch (to make the kernel refuse one).
Inject = Mapping[str, Sequence[str]]
Action = Literal["publish", "unpublish", "block", "unblock"]
ChangeAction = Literal["unpublish", "block", "unblock"]


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """`portscope publish TARGET SPEC`, checked: a container reference or a plain IP, and a parsed `-p` spec."""

    target: str  # a container name or id prefix, or the address in `target_ip`
    spec: PortSpec
    target_ip: str | None = None  # the target when it is an address (a unicast one)
    reason: str | None = None
    force: bool = False

    @property
    def action(self) -> Action:
        return "publish"


@dataclass(frozen=True, slots=True)
class BindingRequest:
    """`portscope unpublish|block|unblock REF`, checked. `ref` is None for a `portscope list` binding id (block)."""

    action: ChangeAction
    text: str
    ref: BindingRef | None
    reason: str | None = None


Request = PublishRequest | BindingRequest


@dataclass(frozen=True, slots=True)
class Plan:
    """The change: the binding it adds or removes, every other binding (kept as it is), and what to warn about."""

    action: Action
    subject: StoredBinding
    others: tuple[StoredBinding, ...]
    reason: str | None = None  # for the audit log: the request's, or the removed binding's own
    warnings: tuple[str, ...] = ()

    @property
    def adds(self) -> bool:
        return self.action in ("publish", "block")

    @property
    def after(self) -> list[StoredBinding]:
        """Every binding portscope keeps once the change is made."""
        return [*self.others, self.subject] if self.adds else list(self.others)


@dataclass(frozen=True, slots=True)
class Change:
    """What a command did (or, previewed, would do)."""

    binding: StoredBinding  # the binding published, blocked or removed
    outcome: Outcome
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- 1. parse


def parse_publish(target: str, spec_text: str, *, reason: str | None = None, force: bool = False) -> PublishRequest:
    """`TARGET SPEC`: a `-p` spec, a container reference or a unicast address, a one-line reason."""
    spec = parse_port_spec(spec_text)
    reason = check_reason(reason)
    target_ip = _plain_ip(target)
    if target_ip is None:
        check_container_ref(target)
    return PublishRequest(target=target, spec=spec, target_ip=target_ip, reason=reason, force=force)


def parse_change(action: ChangeAction, text: str, *, reason: str | None = None) -> BindingRequest:
    """unpublish/unblock: portscope's binding id or `[HOST_IP:]HOST_PORT[/PROTO]`; block: another owner's
    binding, by `HOST_PORT[/PROTO]` or its `portscope list` id (`ipv4/tcp/0.0.0.0:8080->172.17.0.2:80`)."""
    reason = check_reason(reason)
    if action == "block" and "->" in text:
        return BindingRequest(action=action, text=text, ref=None, reason=reason)
    ref = parse_binding_ref(text)
    if action == "block" and ref.binding_id is not None:
        raise InputError(f"{text} is portscope's own binding: `portscope unpublish {text}` instead of blocking")
    return BindingRequest(action=action, text=text, ref=ref, reason=reason)


# --------------------------------------------------------------------------- 2. plan


def plan(request: Request, world: World, current: State) -> Plan:
    """The change `request` asks for on this host; InputError (ConflictError) when it cannot be made."""
    if isinstance(request, PublishRequest):
        return _plan_publish(request, world, current)
    if request.action == "block":
        return _plan_block(request, world, current)
    kind = "publish" if request.action == "unpublish" else "block"
    assert request.ref is not None  # only a block names a `list` binding id
    binding = _stored(current, request.ref, kind)
    if binding is None:
        raise InputError(_not_stored(request.ref, kind, world))
    others = tuple(b for b in current.bindings if b.id != binding.id)
    return Plan(action=request.action, subject=binding, others=others, reason=binding.why)


def _plan_publish(request: PublishRequest, world: World, current: State) -> Plan:
    spec = request.spec
    host_ip = check_host_address(spec.host_ip, world.snap.host.addresses)
    family: Family = "ipv6" if ":" in host_ip else "ipv4"
    target = _target(request, world, family)
    host_port = spec.host_port
    if host_port is None:  # the lowest free port: every binding of the host counts
        bindings = build_inventory(world.snap).bindings
        taken = taken_ports(spec.protocol, world.snap.sockets, bindings, world.snap.containers, current.bindings)
        host_port = pick_port(world.snap.host.ephemeral_range, world.snap.host.reserved_ports, taken)
    verdict = check_port(world.snap, host_ip, host_port, spec.protocol, current.bindings)
    if verdict.errors and not request.force:
        raise ConflictError(f"{verdict.errors[0]}; choose another host port (or --force)")
    binding = StoredBinding(
        id=binding_id("publish", host_ip, host_port, spec.protocol),
        kind="publish",
        host_ip=host_ip,
        host_port=host_port,
        protocol=spec.protocol,
        container_port=spec.container_port,
        container_id=target.container_id,
        container_name=target.container_name,
        target_ip=None if target.container_id else target.ip,
        last_ip=target.ip,
        bridge=target.bridge,
        why=request.reason,
    )
    others = tuple(b for b in current.bindings if b.id != binding.id)
    warnings = [*verdict.errors, *verdict.warnings] if request.force else verdict.warnings
    return Plan(action="publish", subject=binding, others=others, reason=request.reason, warnings=tuple(warnings))


def _plan_block(request: BindingRequest, world: World, current: State) -> Plan:
    on = _id_port(request.text) if request.ref is None else (request.ref.protocol, request.ref.host_port)
    target = _blockable(_bindings_on(world, on), request)
    bid = binding_id("block", target.host_ip, target.host_port or 0, target.protocol)
    if current.find(bid):
        raise InputError(f"{request.text} is already blocked as {bid}: `portscope unblock {bid}` to undo")
    container = next((c for c in world.snap.containers if c.id == target.container_id), None)
    binding = StoredBinding(
        id=bid,
        kind="block",
        host_ip=target.host_ip,
        host_port=target.host_port or 0,
        protocol=target.protocol,
        container_port=target.target_port or 0,
        container_id=container.id if container else None,
        container_name=container.name if container else None,
        target_ip=None if container else target.target_ip,
        last_ip=target.target_ip,
        bridge=bridge_for(target.target_ip, world.snap.host),
        why=request.reason,
    )
    return Plan(action="block", subject=binding, others=tuple(current.bindings), reason=request.reason)


# --------------------------------------------------------------------------- 3. preview or commit


def preview(plan: Plan, world: World, inject: Inject | None = None) -> Change:
    """The rules the change would write, computed from the kernel's current ones; nothing is changed."""
    placement = place_all(plan.after, world.snap)
    outcome = world.commit(placement.placed, inject, dry_run=True)
    return Change(
        binding=plan.subject,
        outcome=outcome,
        warnings=(*outcome.warnings, *plan.warnings),
        notes=(*placement.notes, *outcome.notes),
    )


def commit(plan: Plan, world: World, current: State, folder: str, inject: Inject | None = None) -> Change:
    """Write every binding's rules in one atomic change, then store the state and write the audit line
    (`current` is updated in place). RuleRefusedError leaves the firewall and the state as they were."""
    if plan.adds:
        plan = replace(plan, subject=replace(plan.subject, who=audit.who(), when=audit.now()))
    subject, after = plan.subject, plan.after
    placement = place_all(after, world.snap)
    try:
        outcome = world.commit(placement.placed, inject)
    except RuleRefusedError as exc:
        audit.record(folder, plan.action, subject.describe(), f"refused: {exc}", reason=plan.reason)
        raise
    notes = [*placement.notes, *outcome.notes]
    localnet_sync(placement.placed, current, notes)
    current.created = sorted(world.owned.created)
    removed = {b.id for b in current.bindings} - {b.id for b in after}  # unpublish/unblock drop their subject
    current.bindings = after
    current.backend = world.backend.name
    state.save(folder, current, removed=removed)
    audit.record(folder, plan.action, subject.describe(), "ok", outcome.added, outcome.removed, plan.reason)
    return Change(binding=subject, outcome=outcome, warnings=(*outcome.warnings, *plan.warnings), notes=tuple(notes))


def run(
    request: Request,
    *,
    dry_run: bool = False,
    docker_host: str | None = None,
    backend: str = "auto",
    inject: Inject | None = None,
) -> Change:
    """Plan `request` and preview it (`dry_run`) or commit it, as root, under portscope's lock."""
    require_root(request.action)
    with state.locked() as folder:
        current = state.load(folder)
        world = read_world(docker_host, backend, current)
        planned = plan(request, world, current)
        if dry_run:
            return preview(planned, world, inject)
        return commit(planned, world, current, folder, inject)


def publish(
    target: str,
    spec_text: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    reason: str | None = None,
    docker_host: str | None = None,
    inject: Inject | None = None,
    backend: str = "auto",
) -> Change:
    """`portscope publish TARGET SPEC` as one call: parse, then `run`."""
    request = parse_publish(target, spec_text, reason=reason, force=force)
    return run(request, dry_run=dry_run, docker_host=docker_host, backend=backend, inject=inject)


def localnet_sync(placed: Sequence[Placed], current: State, notes: list[str]) -> None:
    """route_localnet=1 on the bridge of every loopback publish (127.0.0.1 is otherwise never routed out);
    a bridge whose last loopback binding is gone gets back the value recorded when portscope set it."""
    needed = {p.bridge: p.binding.id for p in placed if p.binding.kind == "publish" and p.binding.loopback and p.bridge}
    for bridge, bid in sorted(needed.items()):
        previous = set_route_localnet(bridge, "1")
        if previous != "1" and bridge not in current.localnet:
            current.localnet[bridge] = previous
            notes.append(f"set net.ipv4.conf.{bridge}.route_localnet=1 for {bid} (was {previous})")
    for bridge in sorted(set(current.localnet) - set(needed)):
        value = current.localnet.pop(bridge)
        try:
            set_route_localnet(bridge, value)
        except OSError:
            notes.append(f"{bridge} is gone: its route_localnet needs no restoring")
            continue
        notes.append(f"restored net.ipv4.conf.{bridge}.route_localnet={value} (no loopback binding needs it)")


# --------------------------------------------------------------------------- helpers of the steps


def _plain_ip(ref: str) -> str | None:
    """The address when `ref` is one (anything with ':' or '%', or a dotted quad), checked as a target."""
    if not (":" in ref or "%" in ref or _DOTTED.fullmatch(ref)):
        return None
    return str(check_target_address(parse_address(ref, "target")))


def _check_not_subnet_edge(ip: str, world: World) -> None:
    """Refuse the network or broadcast address of a network this host is on (not one machine)."""
    addr = ipaddress.ip_address(ip)
    for iface, cidr in world.snap.host.networks:
        net = ipaddress.ip_interface(cidr).network
        if net.version != 4 or net.prefixlen >= 31 or addr not in (net.network_address, net.broadcast_address):
            continue
        which = "broadcast" if addr == net.broadcast_address else "network"
        raise InputError(f"target {addr} is the {which} address of {net} ({iface}): give one machine's address")


def _target(request: PublishRequest, world: World, family: Family) -> Target:
    """Where the traffic goes: the plain IP (same family, one machine), or the running container's address."""
    if request.target_ip is not None:
        version = ipaddress.ip_address(request.target_ip).version
        if (version == 6) != (family == "ipv6"):
            raise InputError(
                f"target {request.target_ip} is IPv{version} but the host address is not: use the same family"
            )
        _check_not_subnet_edge(request.target_ip, world)
        return Target(ip=request.target_ip, bridge=bridge_for(request.target_ip, world.snap.host))
    world.require_engine()
    container = find_container(world.snap.containers, request.target)
    if container is None:
        raise InputError(
            f"no container {request.target!r}: check `docker ps -a` (a name, an id prefix or an IP address)"
        )
    return container_target(container, family, world.snap.host)


def _stored(current: State, ref: BindingRef, kind: str) -> StoredBinding | None:
    for b in current.bindings:
        if b.kind != kind:
            continue
        if ref.binding_id is not None:
            if b.id == ref.binding_id:
                return b
        elif b.host_port == ref.host_port and b.protocol == ref.protocol and ref.host_ip in (None, b.host_ip):
            return b
    return None


def _not_stored(ref: BindingRef, kind: str, world: World) -> str:
    """Why nothing is unpublished (unblocked): another owner publishes that port, or portscope has no such binding."""
    if kind == "block":
        return f"no portscope block {_where(ref)}: see `portscope status`"
    other = _foreign(world, ref)
    if other is None:
        return f"no portscope binding {_where(ref)}: see `portscope status`"
    who = other.container_name or other.target_ip
    return (
        f"{_where(ref)} is published by {other.owner} for {who}: it cannot be unpublished without "
        f"recreating that container; `portscope block {_where(ref)}` stops outside traffic to it instead"
    )


def _foreign(world: World, ref: BindingRef) -> Binding | None:
    if ref.host_port is None:
        return None
    for b in _bindings_on(world, (ref.protocol, ref.host_port)):
        same_port = b.host_port == ref.host_port and b.protocol == ref.protocol
        if b.owner != "portscope" and same_port and ref.host_ip in (None, b.host_ip):
            return b
    return None


def _bindings_on(world: World, on: tuple[str, int | None] | None) -> list[Binding]:
    """The bindings of the host, resolved from only the rules that packets to (protocol, host port) can meet;
    every binding when the port is not known."""
    protocol, port = on if on is not None else ("", None)
    if port is None:
        return build_inventory(world.snap).bindings
    return build_inventory(focus(world.snap, protocol, port)).bindings


def _id_port(text: str) -> tuple[str, int] | None:
    """(protocol, first host port) of a `portscope list` binding id; None when it names no port."""
    m = _LIST_ID.fullmatch(text)
    return (m.group(1), int(m.group(2))) if m else None


def _blockable(bindings: list[Binding], request: BindingRequest) -> Binding:
    """The DNAT-carried binding of another owner that the request names (a `list` id or HOST_PORT[/proto])."""
    text, ref = request.text, request.ref
    if ref is None:
        exact = [b for b in bindings if b.id == text]
    else:
        exact = [
            b
            for b in bindings
            if b.host_port == ref.host_port and b.protocol == ref.protocol and ref.host_ip in (None, b.host_ip)
        ]
    if not exact:
        raise InputError(f"nothing is published on {text}: see `portscope list`")
    if all(b.owner == "portscope" for b in exact):
        raise InputError(f"{text} is published by portscope: `portscope unpublish {text}` instead of blocking")
    carried = [b for b in exact if b.owner != "portscope" and "dnat" in b.carriers and b.target_ip]
    if not carried:
        raise InputError(f"{text} is carried by docker-proxy alone, not a DNAT rule: portscope cannot block it")
    v4 = [b for b in carried if b.family == "ipv4"]
    return (v4 or carried)[0]


def _where(ref: BindingRef) -> str:
    if ref.binding_id:
        return ref.binding_id
    host = f"{bracket(ref.host_ip)}:" if ref.host_ip else ""
    return f"{host}{ref.host_port}/{ref.protocol}"
