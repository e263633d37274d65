"""Helpers for the `portscope conflicts` integration tests, and the tests that calibrate them.

The helpers create real situations inside the engine's namespace: host processes that listen
(`HostListener`), hand-made iptables rules (`rule`), containers that are removed with their module
(`module_containers`), and a raw TCP SYN sent from the client through the veth to any destination
address, loopback included (`syn_probe`), to prove what the kernel does with it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from tests.sandbox.client import CLIENT_IF, ENGINE_IF, Client, tcp_get, tcp_talk
from tests.sandbox.engine import IMAGE, Engine, wait_for

pytestmark = pytest.mark.integration

CONFLICTS_SCHEMA = "portscope.conflicts/1"
SYN, RST, ACK = 0x02, 0x04, 0x10

# --------------------------------------------------------------------------- portscope conflicts


@dataclass
class Conflicts:
    """One run of `portscope conflicts --json` inside the engine's namespace."""

    returncode: int
    doc: dict[str, Any]
    stderr: str

    @property
    def findings(self) -> list[dict[str, Any]]:
        return self.doc["findings"]

    def of(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        """Findings of `kind` whose top-level fields equal `fields` (e.g. port=8080, container="x")."""
        return [f for f in self.findings if f["kind"] == kind and all(f.get(k) == v for k, v in fields.items())]

    def one(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The single finding of `kind` matching `fields`; fails with every finding listed otherwise."""
        found = self.of(kind, **fields)
        assert len(found) == 1, f"expected one {kind} {fields}, got {len(found)}:\n{self.summary()}"
        return found[0]

    def kinds(self) -> set[str]:
        return {f["kind"] for f in self.findings}

    def summary(self) -> str:
        return "\n".join(f"  {f['severity']} {f['kind']}: {f['title']}" for f in self.findings) or "  (none)"


def conflicts(engine: Engine) -> Conflicts:
    """`portscope conflicts --json`, parsed; asserts the schema and that the exit status follows the severities."""
    proc = engine.run_portscope("conflicts", "--json")
    assert proc.returncode in (0, 1), f"portscope conflicts exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    doc = json.loads(proc.stdout)
    assert doc["schema"] == CONFLICTS_SCHEMA
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert proc.returncode == (1 if errors else 0), f"exit {proc.returncode} with {len(errors)} error finding(s)"
    assert doc["counts"]["error"] == len(errors)
    return Conflicts(proc.returncode, doc, proc.stderr)


def rule_texts(finding: dict[str, Any]) -> list[str]:
    return [r["text"] for r in finding["evidence"]["rules"]]


def pids(finding: dict[str, Any]) -> set[int]:
    return {p["pid"] for p in finding["evidence"]["processes"]}


# --------------------------------------------------------------------------- containers


def container_ip(engine: Engine, name: str) -> str:
    (obj,) = engine.inspect(name)
    (net,) = obj["NetworkSettings"]["Networks"].values()
    return net["IPAddress"]


def web_command(name: str) -> list[str]:
    """busybox httpd serving `hello from NAME` on port 80."""
    return [IMAGE, "sh", "-c", f"echo 'hello from {name}' > /www/index.html && exec httpd -f -p 80 -h /www"]


@contextlib.contextmanager
def module_containers(engine: Engine, runs: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    """Run containers (`docker run -d --name NAME ARGS`), wait until every httpd among them answers, and remove
    them all afterwards. Yields name -> IP address."""
    try:
        for name, args in runs.items():
            engine.run_container(name, *args)
        ips = {name: container_ip(engine, name) for name in runs}
        for name, args in runs.items():
            if "httpd" in " ".join(args):
                ip = ips[name]
                assert wait_for(lambda ip=ip: tcp_get(engine.ns, ip, 80, timeout=2), timeout=30), f"{name} is silent"
        yield ips
    finally:
        remove_containers(engine, *runs)


def remove_containers(engine: Engine, *names: str) -> None:
    engine.docker("rm", "-f", "-v", *names, check=False)
    for name in names:
        with contextlib.suppress(ValueError):
            engine.containers.remove(name)


def serves(text: str | None, name: str) -> bool:
    """True when an HTTP response came from the `web_command` container NAME."""
    return text is not None and f"hello from {name}" in text


# --------------------------------------------------------------------------- rules


@contextlib.contextmanager
def rule(
    engine: Engine, table: str, chain: str, *spec: str, insert: int | None = None, tool: str | None = None
) -> Iterator[None]:
    """A rule added for the duration of the block (`-I CHAIN N` or `-A CHAIN`), deleted by its spec afterwards.

    `tool` runs another iptables binary (e.g. the other flavour) inside the namespace.
    """
    where = ["-I", chain, str(insert)] if insert is not None else ["-A", chain]
    run = _iptables(engine, tool)
    run("-t", table, *where, *spec)
    try:
        yield
    finally:
        run("-t", table, "-D", chain, *spec, check=False)


Runner = Callable[..., subprocess.CompletedProcess[str]]


def _iptables(engine: Engine, tool: str | None) -> Runner:
    if tool is None:
        return engine.iptables

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return engine.ns.run([tool, "-w", *args], check=check, timeout=60)

    return run


def chain_rules(engine: Engine, table: str, chain: str) -> list[str]:
    """`-A CHAIN ...` lines of one chain, in order, as iptables-save prints them."""
    save = engine.ns.run([engine.setup.iptables_binary(4, "save"), "-t", table], timeout=60).stdout
    return [line for line in save.splitlines() if line.startswith(f"-A {chain} ")]


def run_fix(engine: Engine, fix: str) -> None:
    """Run a finding's `fix` when it is an iptables command, with the set-up's flavour of the tool it names."""
    argv = shlex.split(fix.split("#", 1)[0])
    assert argv and argv[0] in ("iptables", "iptables-legacy", "iptables-nft"), f"not an iptables command: {fix}"
    engine.iptables(*argv[1:])


# --------------------------------------------------------------------------- host processes

_LISTENER = r"""
import socket, sys
host, port, proto, banner = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
family = socket.AF_INET6 if ":" in host else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
if family == socket.AF_INET6:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
try:
    sock.bind((host, port))
except OSError as exc:
    print(f"error {exc.errno}", flush=True)
    sys.exit(1)
if proto == "tcp":
    sock.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        conn, _ = sock.accept()
        with conn:
            conn.sendall(banner)
    else:
        _, peer = sock.recvfrom(65536)
        sock.sendto(banner, peer)
"""


class ListenError(OSError):
    """The host listener could not bind (errno as the kernel said)."""


class HostListener:
    """A real host process (python3) listening inside the engine's namespace; answers every client with `banner`.

    IPv6 sockets are IPV6_V6ONLY. Use as a context manager; `pid` is the listening process itself
    (nsenter execs it).
    """

    def __init__(self, engine: Engine, host: str, port: int, proto: str = "tcp", banner: str = "host-listener"):
        self.engine, self.host, self.port, self.proto, self.banner = engine, host, port, proto, banner
        self.proc: subprocess.Popen[str] | None = None
        self.name = ""  # the process name, as the kernel reports it (read while it runs)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> HostListener:
        snippet = [sys.executable, "-c", _LISTENER, self.host, str(self.port), self.proto, self.banner]
        argv = self.engine.ns.argv(snippet)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # bounded: the snippet prints one line at once, or dies
        if line != "ready":
            self.__exit__(None, None, None)
            errno = int(line.split()[1]) if line.startswith("error ") else 0
            raise ListenError(errno, f"cannot listen on {self.host}:{self.port}/{self.proto}: {line or 'no output'}")
        self.name = psutil.Process(self.pid).name()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def socket_owners(engine: Engine, proto: str, port: int) -> set[str]:
    """Names of the processes holding a listening/bound socket on `port` in the namespace (from `ss`)."""
    flag = "-tlnpH" if proto == "tcp" else "-ulnpH"
    out = engine.ns.run(["ss", flag, f"sport = :{port}"]).stdout
    names = set()
    for line in out.splitlines():
        for part in line.split('(("')[1:]:
            names.add(part.split('"', 1)[0])
        for part in line.split('),("')[1:]:
            names.add(part.split('"', 1)[0])
    return names


def set_sysctl(ns_run: Callable[..., subprocess.CompletedProcess[str]], key: str, value: str) -> str:
    """Set a sysctl inside a namespace; returns the previous value."""
    old = ns_run(["sysctl", "-n", key]).stdout.strip()
    ns_run(["sysctl", "-q", "-w", f"{key}={value}"])
    return old


# --------------------------------------------------------------------------- raw SYN probe

_SYN_SNIPPET = r"""
import random, socket, struct, sys, time
ifname, dst_mac, src_ip, dst_ip, dport, timeout, neighbour = sys.argv[1:8]
dport, timeout = int(dport), float(timeout)

def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

# A neighbour that has talked to the host before: the host's reply leaves with the source address
# it was sent to (127.0.0.1 here), so an ARP request of its own would say "tell 127.0.0.1", which no
# neighbour answers. A refused connection to the host's real address fills its neighbour table first.
try:
    socket.create_connection((neighbour, 9), timeout=timeout).close()
except OSError:
    pass
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sock.bind((ifname, 0x0800))
src_mac = sock.getsockname()[4]
src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
sport, seq = random.randint(20000, 60000), random.getrandbits(32)
tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
sock.send(bytes.fromhex(dst_mac.replace(":", "")) + src_mac + b"\x08\x00" + ip + tcp)
deadline = time.monotonic() + timeout
while (left := deadline - time.monotonic()) > 0:
    sock.settimeout(left)
    try:
        frame, addr = sock.recvfrom(65535)
    except (TimeoutError, socket.timeout):
        break
    packet = frame[14:]
    if addr[2] == socket.PACKET_OUTGOING or len(packet) < 40 or packet[9] != 6:
        continue
    head = (packet[0] & 0x0F) * 4
    if packet[12:16] != dst or packet[16:20] != src:
        continue
    r_sport, r_dport, _, r_ack, _, flags = struct.unpack("!HHIIBB", packet[head:head + 14])
    if (r_sport, r_dport) == (dport, sport) and r_ack == (seq + 1) & 0xFFFFFFFF:
        print(flags)
        sys.exit(0)
print("none")
"""


def engine_mac(engine: Engine) -> str:
    """The MAC address of the engine's end of the veth (netlink, so it is the namespace's own)."""
    (link,) = json.loads(engine.ns.run(["ip", "-j", "link", "show", ENGINE_IF]).stdout)
    return link["address"]


def syn_probe(client: Client, engine: Engine, dst_ip: str, port: int, *, timeout: float = 2.0) -> int | None:
    """Send one TCP SYN from the client (10.203.0.2) to dst_ip:port as a raw frame through the veth, straight to
    the engine's MAC whatever the address (127.0.0.1 included); the TCP flags of the answer, or None."""
    argv = [
        sys.executable, "-c", _SYN_SNIPPET,
        CLIENT_IF, engine_mac(engine), client.client_ip, dst_ip, str(port), str(timeout), client.engine_ip,
    ]  # fmt: skip
    out = client.run(argv, timeout=timeout * 2 + 10).stdout.strip()
    return None if out == "none" else int(out)


def is_syn_ack(flags: int | None) -> bool:
    return flags is not None and flags & (SYN | ACK) == SYN | ACK


# --------------------------------------------------------------------------- calibration


def test_syn_probe_sees_syn_ack_rst_and_silence(engine: Engine, client: Client) -> None:
    """The probe is sound: SYN-ACK from a real listener, RST from a closed port, nothing from a dropped one."""
    with HostListener(engine, "0.0.0.0", 7011) as listener:
        assert tcp_talk(client.ns, client.engine_ip, 7011, timeout=3) == listener.banner
        assert is_syn_ack(syn_probe(client, engine, client.engine_ip, 7011))
    flags = syn_probe(client, engine, client.engine_ip, 7011)
    assert flags is not None and flags & RST, f"a closed port should reset, got {flags}"
    with rule(engine, "filter", "INPUT", "-p", "tcp", "--dport", "7011", "-j", "DROP", insert=1):
        assert syn_probe(client, engine, client.engine_ip, 7011) is None


def test_conflicts_on_an_empty_host(engine: Engine) -> None:
    """No containers, no hand rules: nothing to say, exit 0 (the helpers start from a clean host)."""
    assert engine.docker("ps", "-aq").stdout.split() == [], "a previous module left containers behind"
    result = conflicts(engine)
    assert result.findings == [], result.summary()
    assert result.returncode == 0
