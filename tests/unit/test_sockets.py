"""read_sockets against real sockets opened by this test and by real child processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from portscope.core.model import ProxyArgs, Socket
from portscope.core.sockets import read_sockets

ME = os.getpid()
MY_NAME = psutil.Process(ME).name()


def _find(sockets: list[Socket], protocol: str, address: str, port: int) -> list[Socket]:
    return [s for s in sockets if s.protocol == protocol and s.address == address and s.port == port]


@pytest.fixture
def tcp4() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s


def _ipv6_socket(kind: int) -> socket.socket:
    try:
        return socket.socket(socket.AF_INET6, kind)
    except OSError as err:
        pytest.skip(f"no IPv6: {err}")


def test_tcp_listener_of_this_process(tcp4: socket.socket) -> None:
    port = tcp4.getsockname()[1]
    [found] = _find(read_sockets(), "tcp", "127.0.0.1", port)
    assert found.family == "ipv4"
    assert found.pid == ME
    assert found.process == MY_NAME
    assert found.cmdline == tuple(psutil.Process(ME).cmdline())
    assert found.proxy is None


def test_bound_udp_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        [found] = _find(read_sockets(), "udp", "127.0.0.1", port)
    assert (found.family, found.pid, found.process) == ("ipv4", ME, MY_NAME)


def test_ipv6_loopback_listener() -> None:
    with _ipv6_socket(socket.SOCK_STREAM) as s:
        try:
            s.bind(("::1", 0))
        except OSError as err:
            pytest.skip(f"no ::1 here: {err}")
        s.listen()
        port = s.getsockname()[1]
        [found] = _find(read_sockets(), "tcp", "::1", port)
    assert (found.family, found.pid) == ("ipv6", ME)


def test_dual_stack_and_v4_mapped_listeners_are_ipv6() -> None:
    with _ipv6_socket(socket.SOCK_STREAM) as dual, _ipv6_socket(socket.SOCK_STREAM) as mapped:
        dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        dual.bind(("::", 0))
        dual.listen()
        mapped.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        mapped.bind(("::ffff:127.0.0.1", 0))
        mapped.listen()
        sockets = read_sockets()
        [d] = _find(sockets, "tcp", "::", dual.getsockname()[1])
        [m] = _find(sockets, "tcp", "::ffff:127.0.0.1", mapped.getsockname()[1])
    assert d.family == m.family == "ipv6"
    assert d.pid == m.pid == ME


@pytest.mark.skipif(os.geteuid() != 0, reason="a second read is made for root only (it sees every process)")
def test_listener_opened_while_psutil_reads_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """psutil maps inodes to processes, then reads /proc/net: a listener opened between the two is named all the
    same. The listener is opened at that moment by wrapping psutil's inode scan; the sockets are real."""
    from psutil import _pslinux

    opened: list[socket.socket] = []
    scan = _pslinux.NetConnections.get_all_inodes

    def scan_then_listen(self: object) -> object:
        inodes = scan(self)
        if not opened:
            late = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            late.bind(("127.0.0.1", 0))
            late.listen()
            opened.append(late)
        return inodes

    monkeypatch.setattr(_pslinux.NetConnections, "get_all_inodes", scan_then_listen)
    try:
        found = read_sockets()
        [late] = _find(found, "tcp", "127.0.0.1", opened[0].getsockname()[1])
    finally:
        for sock in opened:
            sock.close()
    assert (late.pid, late.process) == (ME, MY_NAME)


def test_connected_sockets_are_not_listed(tcp4: socket.socket) -> None:
    port = tcp4.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as client, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        accepted, _ = tcp4.accept()
        u.connect(("127.0.0.1", port))
        with accepted:
            sockets = read_sockets()
            client_port = client.getsockname()[1]
            udp_port = u.getsockname()[1]
    assert len(_find(sockets, "tcp", "127.0.0.1", port)) == 1  # the listener, not the accepted socket
    assert _find(sockets, "tcp", "127.0.0.1", client_port) == []
    assert _find(sockets, "udp", "127.0.0.1", udp_port) == []


def test_socket_in_several_fds_is_listed_once(tcp4: socket.socket) -> None:
    dup = os.dup(tcp4.fileno())
    try:
        found = _find(read_sockets(), "tcp", "127.0.0.1", tcp4.getsockname()[1])
    finally:
        os.close(dup)
    assert len(found) == 1


def test_records_are_sorted_by_family_protocol_address_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as a, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as b:
        a.bind(("127.0.0.9", 0))
        b.bind(("127.0.0.10", 0))  # "127.0.0.10" < "127.0.0.9" as text, not as an address
        a.listen()
        b.listen()
        sockets = read_sockets()
        ours = [s for s in sockets if s.pid == ME and s.address in ("127.0.0.9", "127.0.0.10")]
    assert [s.address for s in ours] == ["127.0.0.9", "127.0.0.10"]
    families = [s.family for s in sockets]
    assert families == sorted(families)


# --- a live docker-proxy ---------------------------------------------------------------------------------


def _proxy_flags(proto: str, port: int) -> list[str]:
    return [
        "-proto",
        proto,
        "-host-ip",
        "127.0.0.1",
        "-host-port",
        str(port),
        "-container-ip",
        "172.17.0.2",
        "-container-port",
        "80",
        "-use-listen-fd",
    ]


def _start_proxy(argv: list[str], proto: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start `argv` holding a socket bound by us, as dockerd does with -use-listen-fd; return it and the port."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        if proto == "tcp":
            s.listen()
        port = s.getsockname()[1]
        argv = [a.replace("{port}", str(port)) for a in argv]
        proc = subprocess.Popen(argv, pass_fds=(s.fileno(),), stdin=subprocess.DEVNULL)
    return proc, port  # our copy is closed: only the child holds the socket now


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_live_python_docker_proxy(tmp_path: Path, proto: str) -> None:
    # A python interpreter started through a symlink named docker-proxy: its kernel name (comm) and argv[0]
    # are docker-proxy; "-c CODE" before the proxy flags is an unknown flag the parser skips.
    exe = tmp_path / "docker-proxy"
    exe.symlink_to(os.path.realpath(sys.executable))
    argv = [str(exe), "-c", "import time; time.sleep(120)", *_proxy_flags(proto, 0)]
    argv[argv.index("-host-port") + 1] = "{port}"
    proc, port = _start_proxy(argv, proto)
    try:
        [found] = _find(read_sockets(), proto, "127.0.0.1", port)
    finally:
        _stop(proc)
    assert found.pid == proc.pid
    assert found.process == "docker-proxy"
    assert found.cmdline[0] == str(exe)
    assert found.proxy == ProxyArgs(proto, "127.0.0.1", port, "172.17.0.2", 80)


def test_live_compiled_docker_proxy_exact_argv(tmp_path: Path) -> None:
    # A native binary named docker-proxy whose argv is exactly what dockerd passes.
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a stand-in docker-proxy")
    src = tmp_path / "proxy.c"
    src.write_text("#include <unistd.h>\nint main(void) { pause(); return 0; }\n")
    exe = tmp_path / "docker-proxy"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True)
    argv = [str(exe), *_proxy_flags("tcp", 0)]
    argv[argv.index("-host-port") + 1] = "{port}"
    proc, port = _start_proxy(argv, "tcp")
    try:
        [found] = _find(read_sockets(), "tcp", "127.0.0.1", port)
    finally:
        _stop(proc)
    assert found.pid == proc.pid
    assert found.process == "docker-proxy"
    assert list(found.cmdline) == [str(exe), *_proxy_flags("tcp", port)]
    assert found.proxy == ProxyArgs("tcp", "127.0.0.1", port, "172.17.0.2", 80)


def test_process_that_exited_leaves_no_stale_record(tmp_path: Path) -> None:
    proc, port = _start_proxy([sys.executable, "-c", "import time; time.sleep(120)"], "tcp")
    _stop(proc)
    assert _find(read_sockets(), "tcp", "127.0.0.1", port) == []
