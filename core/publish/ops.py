"""publish, unpublish, block and unblock: validate, check, render, commit, store, audit — under the lock."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from portscope.core.model import Binding, bracket
from portscope.core.publish import audit, state
from portscope.core.publish.commit import Outcome
from portscope.core.publish.conflicts import check_free
from portscope.core.publish.errors import ConflictError, InputError, RuleRefusedError
from portscope.core.publish.freeport import pick_port, taken_ports
from portscope.core.publish.model import State, StoredBinding, binding_id
from portscope.core.publish.placement import place_all
from portscope.core.publish.spec import BindingRef, PortSpec, parse_binding_ref, parse_port_spec
from portscope.core.publish.targets import Target, bridge_for, container_target, find_container
from portscope.core.publish.validate import check_container_ref, check_reason, check_target_address, parse_address
from portscope.core.publish.world import World, read_world, require_root, set_route_localnet

_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+){3}")
#: Test hook: extra restore lines per table, appended to the IPv4 batch (to make the kernel refuse one).
Inject = Mapping[str, Sequence[str]]


@dataclass(slots=True)
class Change:
    """What a command did (or, with dry_run, would do)."""

    binding: StoredBinding | None
    outcome: Outcome
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def publish(
    target_ref: str,
    spec_text: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    reason: str | None = None,
    docker_host: str | None = None,
    inject: Inject | None = None,
    backend: str = "auto",
) -> Change:
    """Publish HOST_IP:HOST_PORT/PROTO to a running container's (or a plain IP's) CONTAINER_PORT."""
    spec = parse_port_spec(spec_text)
    reason = check_reason(reason)
    plain_ip = _plain_ip(target_ref)
    if plain_ip is None:
        check_container_ref(target_ref)
    require_root("publish")
    with state.locked() as folder:
        current = state.load(folder)
        world = read_world(docker_host, backend, current)
        host_ip = _host_ip(spec, world)
        family = "ipv6" if ":" in host_ip else "ipv4"
        target = _target(world, target_ref, plain_ip, family)
        inv, findings = _inventory(world)
        host_port = spec.host_port
        if host_port is None:
            taken = taken_ports(
                spec.protocol, world.snap.sockets, inv.bindings, world.snap.containers, current.bindings
            )
            host_port = pick_port(world.snap.host.ephemeral_range, world.snap.host.reserved_ports, taken)
        verdict = check_free(
            host_ip, host_port, spec.protocol, bindings=inv.bindings, sockets=world.snap.sockets,
            containers=world.snap.containers, stored=current.bindings, findings=findings,
        )  # fmt: skip
        if verdict.errors and not force:
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
            who=audit.who(),
            when=audit.now(),
            why=reason,
        )
        others = [b for b in current.bindings if b.id != binding.id]
        change = _apply(world, folder, current, [*others, binding], "publish", binding, reason, dry_run, inject)
        change.warnings += verdict.errors + verdict.warnings if force else verdict.warnings
        return change


def unpublish(ref_text: str, *, dry_run: bool = False, docker_host: str | None = None, backend: str = "auto") -> Change:
    """Remove exactly one publish binding's rules (by id or host port)."""
    ref = parse_binding_ref(ref_text)
    require_root("unpublish")
    with state.locked() as folder:
        current = state.load(folder)
        binding = _stored(current, ref, "publish")
        world = read_world(docker_host, backend, current)
        if binding is None:
            other = _foreign(world, ref)
            if other is not None:
                who = other.container_name or other.target_ip
                raise InputError(
                    f"{_where(ref)} is published by {other.owner} for {who}: it cannot be unpublished without "
                    f"recreating that container; `portscope block {_where(ref)}` stops outside traffic to it instead"
                )
            raise InputError(f"no portscope binding {_where(ref)}: see `portscope status`")
        rest = [b for b in current.bindings if b.id != binding.id]
        return _apply(world, folder, current, rest, "unpublish", binding, binding.why, dry_run, None)


def block(
    ref_text: str,
    *,
    dry_run: bool = False,
    reason: str | None = None,
    docker_host: str | None = None,
    backend: str = "auto",
) -> Change:
    """DROP outside traffic to another owner's published port (PORTSCOPE-FORWARD, or the nftables forward chain)."""
    reason = check_reason(reason)
    require_root("block")
    with state.locked() as folder:
        current = state.load(folder)
        world = read_world(docker_host, backend, current)
        inv, _ = _inventory(world)
        target = _blockable(inv.bindings, ref_text)
        bid = binding_id("block", target.host_ip, target.host_port or 0, target.protocol)
        if current.find(bid):
            raise InputError(f"{ref_text} is already blocked as {bid}: `portscope unblock {bid}` to undo")
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
            who=audit.who(),
            when=audit.now(),
            why=reason,
        )
        return _apply(world, folder, current, [*current.bindings, binding], "block", binding, reason, dry_run, None)


def unblock(ref_text: str, *, dry_run: bool = False, docker_host: str | None = None, backend: str = "auto") -> Change:
    """Remove a block (by its id or the blocked host port)."""
    ref = parse_binding_ref(ref_text)
    require_root("unblock")
    with state.locked() as folder:
        current = state.load(folder)
        binding = _stored(current, ref, "block")
        if binding is None:
            raise InputError(f"no portscope block {_where(ref)}: see `portscope status`")
        world = read_world(docker_host, backend, current)
        rest = [b for b in current.bindings if b.id != binding.id]
        return _apply(world, folder, current, rest, "unblock", binding, binding.why, dry_run, None)


def _apply(
    world: World,
    folder: str,
    current: State,
    bindings: list[StoredBinding],
    action: str,
    subject: StoredBinding,
    reason: str | None,
    dry_run: bool,
    inject: Inject | None,
) -> Change:
    """Render every binding, commit, then store the state and write the audit line."""
    placement = place_all(bindings, world.snap)
    try:
        outcome = world.commit(placement.placed, inject, dry_run)
    except RuleRefusedError as exc:
        audit.record(folder, action, subject.describe(), f"refused: {exc}", reason=reason)
        raise
    change = Change(binding=subject, outcome=outcome, warnings=list(outcome.warnings))
    change.notes += [*placement.notes, *outcome.notes]
    if dry_run:
        return change
    localnet_sync(placement.placed, current, change.notes)
    current.created = sorted(world.owned.created)
    removed = {b.id for b in current.bindings} - {b.id for b in bindings}  # unpublish/unblock drop their subject
    current.bindings = bindings
    current.backend = world.backend.name
    state.save(folder, current, removed=removed)
    audit.record(folder, action, subject.describe(), "ok", outcome.added, outcome.removed, reason)
    return change


def localnet_sync(placed: Sequence, current: State, notes: list[str]) -> None:
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


def _host_ip(spec: PortSpec, world: World) -> str:
    if spec.host_ip is None:
        return "0.0.0.0"
    addr = parse_address(spec.host_ip, "host address")
    if addr.is_unspecified:
        return str(addr)
    if addr.is_loopback:
        if addr.version == 6:
            raise InputError("::1 cannot be forwarded to a container (IPv6 has no route_localnet): use 127.0.0.1")
        return str(addr)
    if str(addr) not in world.snap.host.addresses:
        raise InputError(f"{addr} is not an address of this host: use one of `ip addr`, 0.0.0.0 or 127.0.0.1")
    return str(addr)


def _target(world: World, ref: str, plain_ip: str | None, family: str) -> Target:
    if plain_ip is not None:
        version = ipaddress.ip_address(plain_ip).version
        if (version == 6) != (family == "ipv6"):
            raise InputError(f"target {plain_ip} is IPv{version} but the host address is not: use the same family")
        _check_not_subnet_edge(plain_ip, world)
        return Target(ip=plain_ip, bridge=bridge_for(plain_ip, world.snap.host))
    world.require_engine()
    container = find_container(world.snap.containers, ref)
    if container is None:
        raise InputError(f"no container {ref!r}: check `docker ps -a` (a name, an id prefix or an IP address)")
    return container_target(container, family, world.snap.host)  # type: ignore[arg-type]


def _inventory(world: World):
    from portscope.core.diagnose.run import diagnose
    from portscope.core.inventory import build_inventory

    inv = build_inventory(world.snap)
    return inv, diagnose(world.snap, inv)


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


def _foreign(world: World, ref: BindingRef) -> Binding | None:
    if ref.host_port is None:
        return None
    inv, _ = _inventory(world)
    for b in inv.bindings:
        same_port = b.host_port == ref.host_port and b.protocol == ref.protocol
        if b.owner != "portscope" and same_port and ref.host_ip in (None, b.host_ip):
            return b
    return None


def _blockable(bindings: list[Binding], text: str) -> Binding:
    """The DNAT-carried binding of another owner that `text` (a `list` binding id or HOST_PORT[/proto]) names."""
    exact = [b for b in bindings if b.id == text]
    if not exact:
        ref = parse_binding_ref(text)
        if ref.binding_id is not None:
            raise InputError(f"{text} is portscope's own binding: `portscope unpublish {text}` instead of blocking")
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
