"""Three namespaces for the native-nftables publish tests: a "host" with only nftables, a "target" behind it
running servers (busybox httpd on TCP 80, a UDP echo on 53), and a "client" on a second veth.

host 10.77.0.1/24 (fd00:77::1) -- hc0 | tc0 -- target 10.77.0.2 (fd00:77::2)
host 10.78.0.1/24 (fd00:78::1) -- hl0 | cl0 -- client 10.78.0.2 (fd00:78::2)

The host forwards (its own namespace's sysctls only); the target has routes back to the client's subnet
through the host and nothing else; no namespace has a route out. `stop` deletes all three (and the servers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from tests.sandbox import netns
from tests.sandbox.client import tcp_get, udp_ask
from tests.sandbox.engine import BUSYBOX, REPO_ROOT, wait_for
from tests.sandbox.netns import NetNs

HOST_IP, TARGET_IP, CLIENT_SIDE_IP, CLIENT_IP = "10.77.0.1", "10.77.0.2", "10.78.0.1", "10.78.0.2"
HOST_IP6, TARGET_IP6, CLIENT_SIDE_IP6, CLIENT_IP6 = "fd00:77::1", "fd00:77::2", "fd00:78::1", "fd00:78::2"
TARGET_IF = "hc0"  # the host's side towards the target
PAGE = "hello from nft-target"
UDP_ECHO = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
    "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
    "s.bind(('::', 53))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(65536)\n"
    "    s.sendto(b'pong:' + data, peer)\n"
)


@dataclass
class NftHost:
    """The three namespaces, the servers' processes, and a private state directory for portscope."""

    host: NetNs
    target: NetNs
    client: NetNs
    root: str
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def state_dir(self) -> str:
        return os.path.join(self.root, "state")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PORTSCOPE_STATE_DIR"] = self.state_dir
        env["DOCKER_HOST"] = f"unix://{self.root}/no-docker.sock"  # never the machine's own engine
        return env

    def portscope(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`python -m portscope ARGS` inside the host namespace."""
        argv = self.host.argv([sys.executable, "-m", "portscope", *args])
        return subprocess.run(argv, cwd=REPO_ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        argv = self.host.argv([sys.executable, "-m", "portscope", *args])
        return subprocess.Popen(
            argv, cwd=REPO_ROOT, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def api(self, code: str) -> subprocess.CompletedProcess[str]:
        """A Python snippet (repo importable) inside the host namespace."""
        argv = self.host.argv([sys.executable, "-c", code])
        return subprocess.run(argv, cwd=REPO_ROOT, env=self.env(), capture_output=True, text=True, timeout=120)

    def nft(self, *args: str, stdin: str | None = None) -> str:
        """`nft ARGS` in the host namespace; its output (raises on failure)."""
        return self.host.run(["nft", *args], input=stdin, timeout=60).stdout

    def ruleset(self) -> str:
        return self.nft("list", "ruleset")

    def iptables_rules(self) -> str:
        """Every iptables-nft rule line of the host namespace (none are expected)."""
        out = []
        for tool in ("iptables-nft-save", "ip6tables-nft-save"):
            text = self.host.run([tool], check=False, timeout=60).stdout
            out += [line for line in text.splitlines() if line.startswith("-A ")]
        return "\n".join(out)


def _ip(ns: NetNs, *args: str) -> None:
    subprocess.run(["ip", "-n", ns.name, *args], check=True, capture_output=True, text=True)


def _veth(a: NetNs, a_if: str, b: NetNs, b_if: str, a_ips: tuple[str, str], b_ips: tuple[str, str]) -> None:
    _ip(a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
    for ns, ifname, (ip4, ip6) in ((a, a_if, a_ips), (b, b_if, b_ips)):
        _ip(ns, "addr", "add", f"{ip4}/24", "dev", ifname)
        _ip(ns, "addr", "add", f"{ip6}/64", "dev", ifname, "nodad")
        _ip(ns, "link", "set", ifname, "up")


def start() -> NftHost:
    """Create the namespaces, the links and the servers; on any failure everything is removed again."""
    root = tempfile.mkdtemp(prefix="psn-")
    made: list[NetNs] = []
    env: NftHost | None = None
    try:
        for prefix in ("psnh", "psnt", "psnc"):
            made.append(netns.create(prefix))
        host, target, client = made
        env = NftHost(host, target, client, root)
        _veth(host, TARGET_IF, target, "tc0", (HOST_IP, HOST_IP6), (TARGET_IP, TARGET_IP6))
        _veth(host, "hl0", client, "cl0", (CLIENT_SIDE_IP, CLIENT_SIDE_IP6), (CLIENT_IP, CLIENT_IP6))
        _ip(target, "route", "add", "10.78.0.0/24", "via", HOST_IP)
        _ip(target, "-6", "route", "add", "fd00:78::/64", "via", HOST_IP6)
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            host.run(["sysctl", "-qw", key], timeout=30)
        www = os.path.join(root, "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w", encoding="ascii") as f:
            f.write(PAGE + "\n")
        env.servers.append(subprocess.Popen(target.argv([BUSYBOX, "httpd", "-f", "-p", "80", "-h", www])))
        env.servers.append(subprocess.Popen(target.argv([sys.executable, "-c", UDP_ECHO])))
        if not wait_for(lambda: tcp_get(host, TARGET_IP, 80, timeout=2), timeout=30):
            raise RuntimeError("busybox httpd in the target namespace never answered")
        if not wait_for(lambda: udp_ask(host, TARGET_IP, 53, "ready", timeout=1), timeout=30):
            raise RuntimeError("the UDP echo in the target namespace never answered")
        return env
    except BaseException:
        if env is not None:
            stop(env)
        else:
            for ns in made:
                netns.delete(ns)
            shutil.rmtree(root, ignore_errors=True)
        raise


def stop(env: NftHost) -> None:
    """Stop the servers, delete the namespaces (their links and rules go with them) and the temp dir."""
    for proc in env.servers:
        proc.terminate()
    for proc in env.servers:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for ns in (env.client, env.target, env.host):
        netns.delete(ns)
    shutil.rmtree(env.root, ignore_errors=True)
