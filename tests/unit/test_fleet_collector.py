"""The collector, run by the real python3 through the real bootstrap (an ssh stand-in runs the remote command on
this host), parsed by the local read's own code: its facts equal a local read's of the same host."""

from __future__ import annotations

import base64
import os
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psutil._pslinux import NetConnections

from portscope.core.fleet.destinations import parse_destination
from portscope.core.fleet.read import read_host
from portscope.core.fleet.remote import RULE_TOOLS, read_remote
from portscope.core.fleet.transport import HostError, Session, failure_reason
from portscope.core.host import read_host_facts
from portscope.core.rules.live import read_rules
from portscope.core.sockets import (
    PROC_NET_FILES,
    _process_info,
    parse_proc_net,
    process_info_from,
    read_endpoints,
)

STANDIN = Path(__file__).with_name("fleet_ssh_standin.py")


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSCOPE_SSH_COMMAND", f"{sys.executable} {STANDIN}")


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    """A TCP listener and a bound UDP socket of this process, on loopback (v4 and v6)."""
    made = []
    for family, kind, address in (
        (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
        (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
        (socket.AF_INET6, socket.SOCK_STREAM, "::1"),
    ):
        s = socket.socket(family, kind)
        s.bind((address, 0))
        if kind == socket.SOCK_STREAM:
            s.listen()
        made.append(s)
    yield made
    for s in made:
        s.close()


def _ours(sockets: list, ports: set[int]) -> list:
    return sorted((s for s in sockets if s.port in ports and s.pid == os.getpid()), key=repr)


def test_collector_facts_parse_into_what_a_local_read_gives(standin: None, listeners: list[socket.socket]) -> None:
    ports = {s.getsockname()[1] for s in listeners}
    with Session(parse_destination("h1"), 30.0) as session:
        snap = read_remote(session, scope="nat")
    local_sockets, _ = read_endpoints()
    ours = _ours(snap.sockets, ports)
    assert len(ours) == 3
    assert ours == _ours(local_sockets, ports)
    assert ours[0].process == psutil.Process().name()
    assert snap.host == read_host_facts()
    local_rules = read_rules(scope="nat")
    assert snap.backends == local_rules.backends
    assert [s.origin for s in snap.sources] == [s.origin for s in local_rules.sources]


def test_rule_tools_are_found_on_the_remote_side(standin: None) -> None:
    with Session(parse_destination("h1"), 30.0) as session:
        found = session.request({"op": "which", "names": ["sh", "no-such-tool-here"]})["which"]
        assert found["sh"] and os.path.isabs(found["sh"])
        assert found["no-such-tool-here"] is None
        (result,) = session.request({"op": "run", "commands": [["no-such-tool-here"]], "timeout": 5})["results"]
        assert result["returncode"] == 127
    assert "nft" in RULE_TOOLS and "iptables-nft-save" in RULE_TOOLS


def test_a_host_without_python3_is_one_line_saying_so(standin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # the remote shell finds no python3
    monkeypatch.setenv("PORTSCOPE_SSH_COMMAND", f"{sys.executable} {STANDIN}")
    read = read_host(parse_destination("h1"), timeout=30.0)
    assert not read.reachable
    assert read.error == "h1: python3 is not installed there: install python3 (3.9 or later) on it"


def test_an_unreachable_host_is_one_line_with_what_to_do(standin: None) -> None:
    read = read_host(parse_destination("unreachable-1"), timeout=30.0)
    assert read.snapshot is None
    assert read.error is not None and "\n" not in read.error
    assert read.error.startswith("unreachable-1: cannot connect: ssh: connect to host unreachable-1 port 22")
    assert "works without a prompt" in read.error


def test_the_real_ssh_never_prompts_and_says_why_it_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSH's client itself, with a proxy command that fails at once: no network is used."""
    monkeypatch.setenv("PORTSCOPE_SSH_COMMAND", "ssh -F /dev/null -o ProxyCommand=false")
    expected = r"^h9: cannot connect: .*check that `ssh h9` works without a prompt"
    with pytest.raises(HostError, match=expected), Session(parse_destination("h9"), 30.0) as session:
        session.request({"op": "which", "names": ["sh"]})


def test_failure_reasons() -> None:
    sudo = "sudo: a password is required\n"
    assert "NOPASSWD" in failure_reason("h", 1, sudo, sudo=True, expired=False, timeout=20)
    assert "raise --timeout" in failure_reason("h", -9, "", sudo=False, expired=True, timeout=20)
    assert "python3" in failure_reason("h", 127, "sh: 1: python3: not found\n", sudo=False, expired=False, timeout=2)


def _kernel_text(address: str, port: int, family: int) -> str:
    """An address as /proc/net/tcp* prints it: 32-bit words in host (little-endian) order."""
    packed = socket.inet_pton(family, address)
    words = struct.unpack(f">{len(packed) // 4}I", packed)
    return base64.b16encode(struct.pack(f"<{len(words)}I", *words)).decode() + f":{port:04X}"


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.integers(0, 65535))
def test_addresses_decode_as_psutil_decodes_them(address: object, port: int) -> None:
    family = socket.AF_INET if ":" not in str(address) else socket.AF_INET6
    name = "tcp" if family == socket.AF_INET else "tcp6"
    field = _kernel_text(str(address), port, family)
    line = f"   0: {field} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n"
    (conn,) = parse_proc_net(name, "header\n" + line, {"4242": 7})
    assert tuple(conn.laddr) == tuple(NetConnections.decode_address(field, family))
    assert conn.raddr == ()
    assert conn.pid == 7 and conn.status == psutil.CONN_LISTEN


def test_real_proc_net_parses_as_psutil_reads_it(listeners: list[socket.socket]) -> None:
    ports = {s.getsockname()[1] for s in listeners}
    found = set()
    for name in PROC_NET_FILES:
        with open(f"/proc/net/{name}") as f:
            for conn in parse_proc_net(name, f.read(), {}):
                if conn.laddr and conn.laddr.port in ports:
                    found.add((conn.family, conn.type, tuple(conn.laddr), conn.status))
    expected = {
        (c.family, c.type, tuple(c.laddr), c.status)
        for c in psutil.net_connections(kind="inet")
        if c.laddr and c.laddr.port in ports
    }
    assert found == expected and len(found) == 3


def test_process_facts_word_the_process_as_psutil_does() -> None:
    pid = os.getpid()
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    comm = data[data.find(b"(") + 1 : data.rfind(b")")].decode()
    with open(f"/proc/{pid}/cmdline") as f:
        cmdline = f.read()
    assert process_info_from(comm, cmdline, None) == _process_info(pid)


@pytest.mark.parametrize(
    ("comm", "cmdline", "expected"),
    [
        ("gnome-keyring-d", "/usr/bin/gnome-keyring-daemon\x00--start\x00", "gnome-keyring-daemon"),
        ("python3", "nginx: worker process", "python3"),
        ("docker-proxy", "/usr/bin/docker-proxy\x00-proto\x00tcp\x00", "docker-proxy"),
    ],
)
def test_process_names_and_command_lines(comm: str, cmdline: str, expected: str) -> None:
    name, args, _proxy, user = process_info_from(comm, cmdline, "alice")
    assert name == expected
    assert args and "\x00" not in "".join(args)
    assert user is None  # only Podman's port holders carry their user
    assert process_info_from("conmon", "", "alice")[3] == "alice"


def test_the_logins_docker_host_reaches_the_collector(standin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST goes as an argument expanded by the remote shell (sudo would drop it from the environment)."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/portscope-test.sock")
    read = read_host(parse_destination("h1"), timeout=30.0)
    assert read.snapshot is not None
    assert read.snapshot.engine.endpoint == "unix:///nonexistent/portscope-test.sock"
    assert read.snapshot.engine.reason == "no Docker socket at /nonexistent/portscope-test.sock (check DOCKER_HOST)"


def test_sudo_missing_there_is_one_line(standin: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "python3").symlink_to(sys.executable)  # python3 is there, sudo is not
    monkeypatch.setenv("PATH", str(tmp_path))
    read = read_host(parse_destination("h1"), timeout=30.0, sudo=True)
    assert read.error == "h1: sudo is not installed there: install it, or log in as root without --sudo"
