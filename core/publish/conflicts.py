"""Is a host address/port/protocol free? Existing bindings (any owner), listeners, our state, stopped
containers that ask for it, and the errors `diagnose` finds for it.

`verdict` checks a snapshot as it is given: the whole host's, or one narrowed to the port (`focus.py`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from portscope.core.diagnose.run import diagnose
from portscope.core.findings import Finding
from portscope.core.inventory import build_inventory
from portscope.core.model import Binding, Container, Snapshot, Socket, bracket
from portscope.core.publish.model import StoredBinding

#: Findings whose `port` is a host port (family-mismatch names a container port).
_HOST_PORT_KINDS = frozenset(
    {"shadowed-rule", "shadowed-listener", "stale-rule", "missing-rule", "port-already-allocated", "exposed",
     "loopback-reachable", "ephemeral-overlap"}
)  # fmt: skip


@dataclass(slots=True)
class Verdict:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def overlaps(a: str, b: str) -> bool:
    """True when two host addresses can receive the same packet ("0.0.0.0"/"::" cover their family;
    a "::" listener also takes IPv4 on a dual-stack socket, so it is counted for both)."""
    if a == b:
        return True
    va, vb = ipaddress.ip_address(a), ipaddress.ip_address(b)
    if va.is_unspecified and (va.version == vb.version or va.version == 6):
        return True
    return vb.is_unspecified and (va.version == vb.version or vb.version == 6)


def verdict(snap: Snapshot, host_ip: str, host_port: int, protocol: str, stored: list[StoredBinding]) -> Verdict:
    """`check_free` on the bindings, sockets, containers and findings of `snap`."""
    inv = build_inventory(snap)
    return check_free(
        host_ip, host_port, protocol, bindings=inv.bindings, sockets=snap.sockets, containers=snap.containers,
        stored=stored, findings=diagnose(snap, inv),
    )  # fmt: skip


def check_free(
    host_ip: str,
    host_port: int,
    protocol: str,
    *,
    bindings: list[Binding],
    sockets: list[Socket],
    containers: list[Container],
    stored: list[StoredBinding],
    findings: list[Finding],
) -> Verdict:
    """Everything that already uses (or will want) host_ip:host_port/protocol."""
    v = Verdict()
    where = f"{bracket(host_ip)}:{host_port}/{protocol}"
    for s in stored:
        if (
            s.kind == "publish"
            and s.protocol == protocol
            and s.host_port == host_port
            and _same_family_overlap(s.host_ip, host_ip)
        ):
            v.errors.append(f"{where} is already published by portscope as {s.id} (to {s.target_label})")
    for b in bindings:
        if b.protocol not in (protocol, "all") or b.owner == "portscope":
            continue
        if b.host_port is None or not b.host_port <= host_port <= (b.host_port_last or b.host_port):
            continue
        if _same_family_overlap(b.host_ip, host_ip):
            who = b.container_name or b.target_ip
            v.errors.append(f"{where} is already published by {b.owner} (to {who}:{b.target_port})")
    for sock in sockets:
        if sock.protocol == protocol and sock.port == host_port and overlaps(sock.address, host_ip):
            held_by = f"{sock.process or 'a process'} (pid {sock.pid})"
            v.errors.append(f"{where} is held by {held_by} on {bracket(sock.address)}")
    for c in containers:
        if c.state == "running":
            continue
        for m in c.requested:
            if m.protocol == protocol and m.host_port == str(host_port) and _overlaps_requested(m.host_ip, host_ip):
                v.errors.append(f"stopped container {c.name} asks for {where}: it would fail to start")
    for f in findings:
        if f.kind in _HOST_PORT_KINDS and f.port == host_port and f.protocol in (None, protocol):
            (v.errors if f.severity == "error" else v.warnings).append(f"{f.kind}: {f.title}")
    return v


def _same_family_overlap(a: str, b: str) -> bool:
    va, vb = ipaddress.ip_address(a), ipaddress.ip_address(b)
    return va.version == vb.version and (a == b or va.is_unspecified or vb.is_unspecified)


def _overlaps_requested(requested: str, host_ip: str) -> bool:
    return not requested or overlaps(requested, host_ip)
