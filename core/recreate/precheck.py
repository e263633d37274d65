"""Before a recreate: the host ports it adds are free, as `publish` checks them, on a live read of the host.

What the container itself holds through Docker (its own bindings and their docker-proxy sockets) is not
counted against it: that is released when the old container stops. portscope's own bindings are counted
(pass the stored bindings minus one being adopted).
"""

from __future__ import annotations

from collections.abc import Iterable

from portscope.core.model import Snapshot
from portscope.core.publish.conflicts import Verdict, check_free
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.spec import PortSpec

_ANY = {4: "0.0.0.0", 6: "::"}


def check_added_ports(
    snap: Snapshot, container_id: str, added: Iterable[PortSpec], stored: Iterable[StoredBinding] = ()
) -> Verdict:
    """Errors and warnings for every added binding with a host port (an engine-chosen one is always free)."""
    from portscope.core.diagnose.run import diagnose
    from portscope.core.inventory import build_inventory

    inv = build_inventory(snap)
    own_ips = {ip for c in snap.containers if c.id == container_id for n in c.networks for ip in (n.ipv4, n.ipv6) if ip}
    bindings = [b for b in inv.bindings if b.container_id != container_id and b.target_ip not in own_ips]
    sockets = [s for s in snap.sockets if s.proxy is None or s.proxy.container_ip not in own_ips]
    others = [c for c in snap.containers if c.id != container_id]
    findings = [f for f in diagnose(snap, inv) if f.container is None or f.container not in _names(snap, container_id)]
    verdict = Verdict()
    for spec in added:
        if spec.host_port is None:
            continue
        addresses = [spec.host_ip] if spec.host_ip else [_ANY[4]]
        for address in addresses:
            found = check_free(
                address, spec.host_port, spec.protocol,
                bindings=bindings, sockets=sockets, containers=others, stored=list(stored), findings=findings,
            )  # fmt: skip
            verdict.errors.extend(found.errors)
            verdict.warnings.extend(found.warnings)
    return verdict


def _names(snap: Snapshot, container_id: str) -> set[str]:
    return {c.name for c in snap.containers if c.id == container_id} | {container_id, container_id[:12]}
