"""A second namespace, "client", wired to an engine's namespace by a veth pair, to send real packets.

Engine side 10.203.0.1/24 and fd00:203::1/64, client side 10.203.0.2/24 and fd00:203::2/64.
Neither namespace gets a route out. Probes run a small Python socket snippet inside a
namespace via `nsenter`, with a bounded timeout: a timeout only means "no answer".
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tests.sandbox import netns
from tests.sandbox.engine import client_ns_name
from tests.sandbox.netns import NetNs

ENGINE_IP = "10.203.0.1"
CLIENT_IP = "10.203.0.2"
ENGINE_IP6 = "fd00:203::1"
CLIENT_IP6 = "fd00:203::2"
ENGINE_IF = "psveth0"
CLIENT_IF = "psveth1"

_TCP_SNIPPET = r"""
import socket, sys
host, port, timeout, payload = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].encode()
try:
    sock = socket.create_connection((host, port), timeout=timeout)
except OSError:
    sys.exit(2)
data = b""
try:
    if payload:
        sock.sendall(payload)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
sys.stdout.write(data.decode("utf-8", "replace"))
sys.exit(0 if data else 3)
"""

_UDP_SNIPPET = r"""
import socket, sys
host, port, timeout, payload = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].encode()
info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
sock = socket.socket(info[0], socket.SOCK_DGRAM)
sock.settimeout(timeout)
try:
    sock.sendto(payload, info[4])
    data, _ = sock.recvfrom(65536)
except OSError:
    sys.exit(2)
sys.stdout.write(data.decode("utf-8", "replace"))
"""


def _probe(ns: NetNs, snippet: str, host: str, port: int, payload: str, timeout: float) -> str | None:
    argv = ns.argv([sys.executable, "-c", snippet, host, str(port), str(timeout), payload])
    try:
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return None
    return proc.stdout if proc.returncode == 0 else None


def tcp_get(ns: NetNs, host: str, port: int, path: str = "/", *, timeout: float = 5.0) -> str | None:
    """From `ns`, send `GET path HTTP/1.0` to host:port; the whole response (headers and body), or None."""
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n"
    return _probe(ns, _TCP_SNIPPET, host, port, request, timeout)


def tcp_talk(ns: NetNs, host: str, port: int, payload: str = "", *, timeout: float = 5.0) -> str | None:
    """From `ns`, connect to host:port, send `payload`, read until close; the text received, or None."""
    return _probe(ns, _TCP_SNIPPET, host, port, payload, timeout)


def udp_ask(ns: NetNs, host: str, port: int, payload: str, *, timeout: float = 3.0) -> str | None:
    """From `ns`, send one datagram to host:port; the first reply as text, or None if none came."""
    return _probe(ns, _UDP_SNIPPET, host, port, payload, timeout)


@dataclass
class Client:
    """The client namespace and the addresses on both ends of its veth."""

    ns: NetNs
    engine_ns: NetNs
    engine_ip: str = ENGINE_IP
    client_ip: str = CLIENT_IP
    engine_ip6: str = ENGINE_IP6
    client_ip6: str = CLIENT_IP6

    def run(self, argv: Sequence[str], *, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the client namespace."""
        return self.ns.run(argv, check=check, **kwargs)

    def tcp_get(self, host: str, port: int, path: str = "/", *, timeout: float = 5.0) -> str | None:
        """HTTP/1.0 GET from the client; the raw response, or None if no answer."""
        return tcp_get(self.ns, host, port, path, timeout=timeout)

    def tcp_talk(self, host: str, port: int, payload: str = "", *, timeout: float = 5.0) -> str | None:
        """Send `payload` over TCP from the client; what came back, or None."""
        return tcp_talk(self.ns, host, port, payload, timeout=timeout)

    def udp_ask(self, host: str, port: int, payload: str, *, timeout: float = 3.0) -> str | None:
        """One UDP datagram from the client; the reply, or None."""
        return udp_ask(self.ns, host, port, payload, timeout=timeout)


def start_client(engine_ns: NetNs, name: str | None = None) -> Client:
    """Create the client namespace and the veth pair (created inside the namespaces, never in the root one)."""
    ns = netns.create("psc", name=name)
    try:
        subprocess.run(
            ["ip", "-n", engine_ns.name, "link", "add", ENGINE_IF, "type", "veth", "peer", "name", CLIENT_IF, "netns",
             ns.name],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        for side, ifname, ip4, ip6 in (
            (engine_ns, ENGINE_IF, ENGINE_IP, ENGINE_IP6),
            (ns, CLIENT_IF, CLIENT_IP, CLIENT_IP6),
        ):
            for argv in (
                ["addr", "add", f"{ip4}/24", "dev", ifname],
                ["addr", "add", f"{ip6}/64", "dev", ifname, "nodad"],
                ["link", "set", ifname, "up"],
            ):
                subprocess.run(["ip", "-n", side.name, *argv], check=True, capture_output=True, text=True)
    except BaseException:
        stop_client(Client(ns=ns, engine_ns=engine_ns))
        raise
    return Client(ns=ns, engine_ns=engine_ns)


def stop_client(client: Client) -> None:
    """Delete the client namespace; the veth pair goes with it (and the engine end with the engine namespace)."""
    netns.delete(client.ns)
    subprocess.run(["ip", "-n", client.engine_ns.name, "link", "del", ENGINE_IF], capture_output=True, check=False)


@contextlib.contextmanager
def paired_client(engine_ns: NetNs) -> Iterator[Client]:
    """A client of `engine_ns` for the duration of the block, named after it so that a stale one is found."""
    client = start_client(engine_ns, name=client_ns_name(engine_ns.name))
    try:
        yield client
    finally:
        stop_client(client)
