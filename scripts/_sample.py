"""The sample host shared by `scripts/make_sample` and `scripts/screenshots`.

A sandboxed dockerd (nftables iptables, userland proxy off) in a private network namespace,
with containers and host-side processes that give every finding severity:

- error:   a host process listens on 127.0.0.1:2222 while a hand DNAT sends that port elsewhere (shadowed listener;
           a container's port cannot be used: with the proxy off dockerd itself holds 0.0.0.0:PORT)
- warning: `-p 40000:80` lies in the ephemeral range; a second hand DNAT for 2222 is shadowed by the first
- info:    Docker sets route_localnet=1 on docker0 with the proxy off

Nothing here touches the root namespace; `sample_host()` tears everything down on exit.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.sandbox.client import start_client, stop_client  # noqa: E402
from tests.sandbox.engine import IMAGE, Engine, Setup, ensure_image, start_engine, stop_engine, wait_for  # noqa: E402

#: A host process that takes a DNATed port (127.0.0.1:2222) and also uses the ephemeral range:
#: a listener on 127.0.0.1:45000 and three outbound connections to it.
HOST_PROCESS = r"""
import socket, time
a = socket.socket(); a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
a.bind(("127.0.0.1", 2222)); a.listen()
b = socket.socket(); b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
b.bind(("127.0.0.1", 45000)); b.listen()
held = [socket.create_connection(("127.0.0.1", 45000)) for _ in range(3)]
print("ready", flush=True)
time.sleep(3600)
"""

#: Hand-made DNATs: the second one for tcp/2222 never matches (the first catches every packet).
HAND_RULES = (
    ("-A", "PREROUTING", "-p", "tcp", "--dport", "2222", "-j", "DNAT", "--to-destination", "10.99.0.5:22"),
    ("-A", "PREROUTING", "-p", "tcp", "--dport", "2222", "-j", "DNAT", "--to-destination", "10.99.0.6:22"),
)

#: name -> `docker run` arguments (after `-d --name NAME`).
CONTAINERS: dict[str, list[str]] = {
    "web": ["-p", "8080:80", IMAGE, "httpd", "-f", "-p", "80"],
    "api": ["--network", "backend", "-p", "127.0.0.1:9000:80", IMAGE, "httpd", "-f", "-p", "80"],
    "dns": ["-p", "5353:53/udp", IMAGE, "sleep", "3600"],
    "cache": ["-p", "40000:80", IMAGE, "httpd", "-f", "-p", "80"],
    "blank": ["-p", "80", "-p", "443", IMAGE, "httpd", "-f", "-p", "80"],
    "worker": ["--network", "backend", IMAGE, "sleep", "3600"],
}


def _log(text: str) -> None:
    print(f"sample: {text}", file=sys.stderr, flush=True)


def populate(engine: Engine) -> subprocess.Popen[str]:
    """Create networks, containers, hand rules and the host process; returns the host process (caller stops it)."""
    ensure_image(engine)
    engine.docker("network", "create", "--subnet", "172.30.0.0/24", "backend")
    for name, args in CONTAINERS.items():
        _log(f"docker run {name}")
        engine.run_container(name, *args)
    engine.docker("network", "connect", "backend", "web")
    # A stopped container that asked for a port (requested, not in force).
    engine.containers.append("old")
    engine.docker("create", "--name", "old", "-p", "8081:80", IMAGE, "httpd", "-f", "-p", "80")
    for rule in HAND_RULES:
        engine.iptables("-t", "nat", *rule)
    script = engine.root / "devserver.py"
    script.write_text(HOST_PROCESS)
    proc = subprocess.Popen(
        engine.ns.argv([sys.executable, str(script)]), stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("the host listener did not start")
    wait_for(lambda: all(_running(engine, n) for n in CONTAINERS), timeout=30)
    return proc


def _running(engine: Engine, name: str) -> bool:
    return engine.inspect(name)[0]["State"]["Running"]


@contextlib.contextmanager
def sample_host() -> Iterator[Engine]:
    """The sample engine, populated; everything is removed when the block ends."""
    _log("starting the sandboxed engine (nft, userland proxy off)")
    engine = start_engine(Setup("nft", False))
    client = proc = None
    try:
        client = start_client(engine.ns, name="psc-" + engine.ns.name.removeprefix("pse-"))
        proc = populate(engine)
        time.sleep(0.5)
        yield engine
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        if client is not None:
            stop_client(client)
        _log("stopping the engine")
        stop_engine(engine)


def capture(engine: Engine, path: str | Path) -> None:
    """`portscope capture -o PATH`, run inside the engine's namespace."""
    proc = engine.run_portscope("capture", "-o", str(path))
    if proc.returncode != 0:
        raise RuntimeError(f"portscope capture failed ({proc.returncode}): {proc.stderr.strip()}")
