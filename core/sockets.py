"""Listening sockets of the current network namespace, with their processes (via psutil).

psutil reads /proc/net/{tcp,tcp6,udp,udp6}, which the kernel fills for the network
namespace of the reading process: portscope must run inside the namespace it inspects.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket as _socket

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
_ProcInfo = tuple[str | None, tuple[str, ...], ProxyArgs | None, str | None]
_NO_PROCESS: _ProcInfo = (None, (), None, None)


def read_sockets() -> list[Socket]:
    """Every TCP listener and every bound, unconnected UDP socket, sorted.

    A socket open in several file descriptors of one process is listed once. The
    process name and command line are left empty where the process is gone or
    not readable (run as root to see every process).
    """
    return read_endpoints()[0]


def read_endpoints() -> tuple[list[Socket], list[Connection]]:
    """Listeners (as `read_sockets`) and every other socket's local port, in one pass over /proc."""
    connections: list[Connection] = []
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError) as err:
        raise PortscopeError(f"cannot read sockets from /proc/net: {err}") from err
    procs: dict[int, _ProcInfo] = {}
    seen: set[tuple[Family, str, str, int, int | None]] = set()
    result: list[Socket] = []
    for conn in conns:
        family = _FAMILIES.get(conn.family)
        protocol = _PROTOCOLS.get(conn.type)
        if family is None or protocol is None or not conn.laddr:
            continue
        if (protocol == "tcp" and conn.status != psutil.CONN_LISTEN) or (protocol == "udp" and conn.raddr):
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
        info = _NO_PROCESS if conn.pid is None else procs.get(conn.pid)
        if info is None:
            info = procs[conn.pid] = _process_info(conn.pid)
        name, cmdline, proxy, user = info
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


def _process_info(pid: int) -> _ProcInfo:
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
