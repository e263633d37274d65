"""The fixed addresses, interface names and ports of the differential topology, shared by every module.

host ext0 10.91.1.1/24 -- eth0 client "a" 10.91.1.2    (arrives on ext0: the PREROUTING hook)
host ext1 10.91.2.1/24 -- eth0 client "b" 10.91.2.2    (arrives on ext1)
host dum0 10.91.9.1/32                                  (a second host address, on an empty bridge)
host docker0 / rsp1..3 10.92.N.1/24 -- eth0 responder rN 10.92.N.2
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_A_NET = "10.91.1.0/24"
CLIENT_B_NET = "10.91.2.0/24"
HOST_A = "10.91.1.1"
HOST_B = "10.91.2.1"
HOST_EXTRA = "10.91.9.1"
CLIENT_A = "10.91.1.2"
CLIENT_B = "10.91.2.2"
LOOPBACK = "127.0.0.1"
TEST_NET = "10.91.0.0/16"  # clients and the extra host address: what responders route back through the host
EXT_A, EXT_B, EXTRA_IF = "ext0", "ext1", "dum0"


@dataclass(frozen=True)
class Responder:
    """A namespace standing in for a container, on its own veth and subnet."""

    name: str
    ip: str
    host_ip: str  # the host's end of the veth
    host_if: str


RESPONDERS = tuple(
    Responder(f"r{i}", f"10.92.{i}.2", f"10.92.{i}.1", "docker0" if i == 0 else f"rsp{i}") for i in range(4)
)
RESPONDER_BY_IP = {r.ip: r for r in RESPONDERS}

#: Destination ports every probe side tries; rules' ports are drawn so that they hit, overlap and miss these.
GRID_PORTS = (80, 443, 2222, 5000, 5001, 8000, 8005, 8010, 8080, 9000)
#: Ports a DNAT may translate to (responders listen on these and on the grid).
TARGET_PORTS = (80, 443, 5432, 6000)
LISTEN_PORTS = tuple(sorted(set(GRID_PORTS) | set(TARGET_PORTS)))
PROTOCOLS = ("tcp", "udp")
