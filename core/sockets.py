"""Listening sockets of the current network namespace, with their processes (via psutil).

psutil reads /proc/net/{tcp,tcp6,udp,udp6}, which the kernel fills for the network
namespace of the reading process: portscope must run inside the namespace it inspects.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket as _socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import psutil

from portscope.core.docker_proxy import parse_proxy_cmdline
from portscope.core.errors import PortscopeError
from portscope.core.model import Connection, Family, ProxyArgs, Socket

_FAMILIES: dict[int, Family] = {_socket.AF_INET: "ipv4", _socket.AF_INET6: "ipv6"}
_PROTOCOLS: dict[int, str] = {_socket.SOCK_STREAM: "tcp", _socket.SOCK_DGRAM: "udp"}

#: Rootless Podman's processes that carry a published port themselves (no NAT rule), in the user's namespace.
ROOTLESS_CARRIERS = frozenset({"rootlessport", "slirp4netns", "pasta"})
#: Podman's processes that hold a published host port: these, and conmon beside netavark's DNAT (rootful).
#: Their command lines do not name the port; their user is read.
PORT_HOLDERS = ROOTLESS_CARRIERS | {"conmon"}

#: (name, cmdline, docker-proxy args, user of a port holder) of one process, read once per pid.
ProcInfo = tuple[str | None, tuple[str, ...], ProxyArgs | None, str | None]
NO_PROCESS: ProcInfo = (None, (), None, None)


def read_sockets() -> list[Socket]:
    """Every TCP listener and every bound, unconnected UDP socket, sorted.

    A socket open in several file descriptors of one process is listed once. The
    process name and command line are left empty where the process is gone or
    not readable (run as root to see every process).
    """
    return read_endpoints()[0]


class Address(NamedTuple):
    ip: str
    port: int


class RawConnection(NamedTuple):
    """One inet socket as psutil.net_connections() gives it (the fields `endpoints_from` reads)."""

    family: int
    type: int
    laddr: Address | tuple[()]
    raddr: Address | tuple[()]
    status: str
    pid: int | None


def read_endpoints() -> tuple[list[Socket], list[Connection]]:
    """Listeners (as `read_sockets`) and every other socket's local port, in one pass over /proc."""
    conns = _net_connections()
    if os.geteuid() == 0 and any(_unowned_listener(conn) for conn in conns):
        # psutil maps socket inodes to processes before it reads /proc/net: a listener opened in between is
        # listed without its process. Its descriptor exists before it is listed, so a second read names it;
        # a listener no process holds (a kernel socket: VXLAN, WireGuard) stays unnamed.
        conns = _net_connections()
    return endpoints_from(conns, _process_info)


def _net_connections() -> list[Any]:
    try:
        return psutil.net_connections(kind="inet")
    except (psutil.Error, OSError) as err:
        raise PortscopeError(f"cannot read sockets from /proc/net: {err}") from err


def _is_listener(conn: RawConnection | Any) -> bool:
    """A TCP socket in LISTEN, or a bound, unconnected UDP socket."""
    if conn.type == _socket.SOCK_STREAM:
        return bool(conn.status == psutil.CONN_LISTEN)
    return conn.type == _socket.SOCK_DGRAM and not conn.raddr


def _unowned_listener(conn: RawConnection | Any) -> bool:
    """A listener of an inet family whose process psutil did not find."""
    return conn.pid is None and bool(conn.laddr) and conn.family in _FAMILIES and _is_listener(conn)


def endpoints_from(
    conns: Iterable[RawConnection | Any], process_info: Callable[[int], ProcInfo]
) -> tuple[list[Socket], list[Connection]]:
    """Listeners and other sockets' local ports from psutil's connections (or `parse_proc_net`'s, for another
    host), each process described once by `process_info(pid)`."""
    connections: list[Connection] = []
    procs: dict[int, ProcInfo] = {}
    seen: set[tuple[Family, str, str, int, int | None]] = set()
    result: list[Socket] = []
    for conn in conns:
        family = _FAMILIES.get(conn.family)
        protocol = _PROTOCOLS.get(conn.type)
        if family is None or protocol is None or not conn.laddr:
            continue
        if not _is_listener(conn):
            if conn.status != psutil.CONN_TIME_WAIT or conn.pid is not None:
                name = procs[conn.pid][0] if conn.pid in procs else None
                connections.append(
                    Connection(family=family, protocol=protocol, local_port=conn.laddr.port, pid=conn.pid, process=name)
                )
            continue
        key = (family, protocol, conn.laddr.ip, conn.laddr.port, conn.pid)
        if key in seen:
            continue
        seen.add(key)
        pid: int | None = conn.pid
        info = NO_PROCESS if pid is None else procs.get(pid)
        if info is None and pid is not None:
            info = procs[pid] = process_info(pid)
        name, cmdline, proxy, user = info or NO_PROCESS
        result.append(
            Socket(
                family=family,
                protocol=protocol,
                address=conn.laddr.ip,
                port=conn.laddr.port,
                pid=conn.pid,
                process=name,
                cmdline=cmdline,
                proxy=proxy,
                user=user,
            )
        )
    result.sort(key=_sort_key)
    return result, connections


#: /proc/net file name -> (address family, socket type), as psutil reads them.
PROC_NET_FILES: dict[str, tuple[int, int]] = {
    "tcp": (_socket.AF_INET, _socket.SOCK_STREAM),
    "tcp6": (_socket.AF_INET6, _socket.SOCK_STREAM),
    "udp": (_socket.AF_INET, _socket.SOCK_DGRAM),
    "udp6": (_socket.AF_INET6, _socket.SOCK_DGRAM),
}
_TCP_STATES = {"0A": psutil.CONN_LISTEN, "06": psutil.CONN_TIME_WAIT}


def parse_proc_net(name: str, text: str, inodes: Mapping[str, int]) -> list[RawConnection]:
    """The sockets of a /proc/net/{tcp,tcp6,udp,udp6} text (`name`), decoded as psutil does; `inodes`: socket
    inode -> pid. Malformed lines are skipped."""
    family, kind = PROC_NET_FILES[name]
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            laddr = _decode_address(fields[1], family)
            raddr = _decode_address(fields[2], family)
        except ValueError:
            continue
        status = _TCP_STATES.get(fields[3], fields[3]) if kind == _socket.SOCK_STREAM else psutil.CONN_NONE
        found.append(RawConnection(family, kind, laddr, raddr, status, inodes.get(fields[9])))
    return found


def _decode_address(text: str, family: int) -> Address | tuple[()]:
    """ "0500000A:0016" -> ("10.0.0.5", 22): the kernel's words in host (little-endian) order; port 0 is ()."""
    ip_hex, _, port_hex = text.partition(":")
    port = int(port_hex, 16)
    if not port:
        return ()
    raw = bytes.fromhex(ip_hex)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return Address(_socket.inet_ntop(family, words), port)


def process_info_from(comm: str | None, cmdline: str | None, user: str | None) -> ProcInfo:
    """A process's (name, cmdline, proxy args, user) from its raw /proc facts (another host's), as psutil
    words them: the name from `stat` (extended from the command line when the kernel cut it at 15 characters),
    the command line split on NULs (or spaces, for a process that rewrote it)."""
    if comm is None:
        return NO_PROCESS
    args: tuple[str, ...] = ()
    if cmdline:
        sep = "\x00" if cmdline.endswith("\x00") else " "
        data = cmdline[:-1] if cmdline.endswith(sep) else cmdline
        parts = data.split(sep)
        if sep == "\x00" and len(parts) == 1 and " " in data:
            parts = data.split(" ")
        args = tuple(parts)
    name = comm
    if len(name) >= 15 and args:
        extended = os.path.basename(args[0])
        if extended.startswith(name):
            name = extended
    return name, args, parse_proxy_cmdline(args), user if name in PORT_HOLDERS else None


def _process_info(pid: int) -> ProcInfo:
    """(name, cmdline, proxy args, user of a port holder) of a process; what cannot be read is None / ()."""
    name: str | None = None
    cmdline: tuple[str, ...] = ()
    user: str | None = None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            with contextlib.suppress(psutil.Error, OSError):
                name = proc.name()
            with contextlib.suppress(psutil.Error, OSError):
                cmdline = tuple(proc.cmdline())
            if name in PORT_HOLDERS:
                user = _user(proc)
    except (psutil.Error, OSError):
        pass  # gone or not ours to read: leave it unnamed
    return name, cmdline, parse_proxy_cmdline(cmdline), user


def rootless_hints(sockets: list[Socket], endpoint: str | None) -> list[str]:
    """One line per rootless Podman user whose ports are carried here but whose API socket was not read
    (`endpoint`): where that user's containers can be read from."""
    hints = []
    for user in sorted({s.user for s in sockets if s.process in ROOTLESS_CARRIERS and s.user}):
        try:
            uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        except KeyError:
            continue
        path = f"/run/user/{uid}/podman/podman.sock"
        if endpoint in (f"unix://{path}", path):
            continue
        ports = ", ".join(sorted({f"{s.protocol}/{s.port}" for s in sockets if s.user == user}))
        start = "" if os.path.exists(path) else f"start `podman system service` as {user}, then "
        hints.append(
            f"rootless Podman of user {user} carries {ports}; its containers are not read: {start}run with "
            f"DOCKER_HOST=unix://{path}"
        )
    return hints


def _user(proc: psutil.Process) -> str | None:
    """The process's real user name (psutil gives the uid as text when no name is known), or None if unreadable."""
    try:
        return proc.username()
    except (psutil.Error, OSError):
        return None


def _sort_key(s: Socket) -> tuple[str, str, bytes, int, int]:
    """Family, protocol, then address in numeric order, port and pid."""
    try:
        packed = _socket.inet_pton(_socket.AF_INET if s.family == "ipv4" else _socket.AF_INET6, s.address)
    except OSError:
        packed = s.address.encode()
    return (s.family, s.protocol, packed, s.port, -1 if s.pid is None else s.pid)
