"""The namespaces of one differential run: a host, two clients and the responders behind it.

See `layout` for the addresses. Only the host forwards; responders route the test subnets back through
the host; clients route only the host's extra address through it; no namespace has a route out. Nothing
touches the root namespace: links are made inside the host namespace with their peer moved straight out.
`stop` removes everything, and runs from try/finally, from atexit, and (`reap_stale`) for a run that was
killed before it could.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import subprocess
from dataclasses import dataclass, field

from tests.differential import agents, layout
from tests.differential.probe import Probe, Side
from tests.sandbox import netns
from tests.sandbox.netns import NetNs

PREFIX = "psd"
_NAME = re.compile(rf"^{PREFIX}(\d+)x\d+-")
#: The host's own sysctls: forward; let a DNAT send 127.0.0.1 out; never rate-limit the ICMP port
#: unreachables that end a UDP probe quickly; no reverse-path filter.
SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.route_localnet=1",
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv4.icmp_msgs_per_sec=100000",
    "net.ipv4.icmp_msgs_burst=100000",
    "net.ipv4.conf.all.rp_filter=0",
)
_counter = itertools.count()
_live: list[Topology] = []


@dataclass(eq=False)
class Topology:
    """The namespaces and the processes in them."""

    host: NetNs
    clients: dict[Side, NetNs] = field(default_factory=dict)
    responders: list[NetNs] = field(default_factory=list)
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    probers: dict[Side, agents.Prober] = field(default_factory=dict)

    def namespaces(self) -> list[NetNs]:
        return [*self.clients.values(), *self.responders, self.host]

    def observe(self, probes: list[Probe], timeout: float) -> list[str | None]:
        """Send every probe, all sides at once; each probe's answer (None: refused, dropped or timed out)."""
        by_side: dict[Side, list[int]] = {}
        for i, probe in enumerate(probes):
            by_side.setdefault(probe.side, []).append(i)
        for side, indices in by_side.items():
            batch = [(probes[i].protocol, probes[i].saddr, probes[i].daddr, probes[i].port) for i in indices]
            self.probers[side].send(batch, timeout)
        answers: list[str | None] = [None] * len(probes)
        for side, indices in by_side.items():
            for i, got in zip(indices, self.probers[side].receive(), strict=True):
                answers[i] = got
        return answers


def _ip(ns: NetNs, *args: str) -> None:
    subprocess.run(["ip", "-n", ns.name, *args], check=True, capture_output=True, text=True)


def _link(host: NetNs, host_if: str, host_cidr: str, peer: NetNs, peer_cidr: str) -> None:
    """A veth from the host (`host_if`) to `peer` (`eth0`), addressed and up on both ends."""
    _ip(host, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", peer.name)
    for ns, ifname, cidr in ((host, host_if, host_cidr), (peer, "eth0", peer_cidr)):
        _ip(ns, "addr", "add", cidr, "dev", ifname)
        _ip(ns, "link", "set", ifname, "up")


def start() -> Topology:
    """Create the namespaces, links, responders and probers; on failure remove whatever was made."""
    reap_stale()
    stem = f"{PREFIX}{os.getpid()}x{next(_counter)}"
    topo = Topology(host=netns.create(name=f"{stem}-h"))
    _live.append(topo)
    try:
        _build(topo, stem)
    except BaseException:
        stop(topo)
        raise
    return topo


def _build(topo: Topology, stem: str) -> None:
    host = topo.host
    host.run(["sysctl", "-qw", *SYSCTLS], timeout=30)
    _ip(host, "link", "add", layout.EXTRA_IF, "type", "bridge")  # an empty bridge: no dummy driver everywhere
    _ip(host, "addr", "add", f"{layout.HOST_EXTRA}/32", "dev", layout.EXTRA_IF)
    _ip(host, "link", "set", layout.EXTRA_IF, "up")
    for side, host_if, host_ip, client_ip in (
        ("a", layout.EXT_A, layout.HOST_A, layout.CLIENT_A),
        ("b", layout.EXT_B, layout.HOST_B, layout.CLIENT_B),
    ):
        client = topo.clients[side] = netns.create(name=f"{stem}-{side}")  # type: ignore[index]
        _link(host, host_if, f"{host_ip}/24", client, f"{client_ip}/24")
        _ip(client, "route", "add", f"{layout.HOST_EXTRA}/32", "via", host_ip)
    for responder in layout.RESPONDERS:
        ns = netns.create(name=f"{stem}-{responder.name}")
        topo.responders.append(ns)
        _link(host, responder.host_if, f"{responder.host_ip}/24", ns, f"{responder.ip}/24")
        _ip(ns, "route", "add", layout.TEST_NET, "via", responder.host_ip)
        topo.servers.append(agents.start_responder(ns, responder.name, layout.LISTEN_PORTS))
    topo.probers = {side: agents.Prober(ns) for side, ns in (*topo.clients.items(), ("host", host))}


def stop(topo: Topology) -> None:
    """Stop every process and delete every namespace (their links go with them)."""
    for proc in [*topo.servers, *(p.proc for p in topo.probers.values())]:
        agents.stop(proc)
    for ns in topo.namespaces():
        netns.delete(ns)
    if topo in _live:
        _live.remove(topo)


def reap_stale() -> list[str]:
    """Delete the namespaces of differential runs whose process is gone."""
    reaped = []
    for name in sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []:
        found = _NAME.match(name)
        if found and not os.path.exists(f"/proc/{found.group(1)}"):
            netns.delete(NetNs(name))
            reaped.append(name)
    return reaped


@atexit.register
def _stop_all() -> None:
    for topo in list(_live):
        stop(topo)
