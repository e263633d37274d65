"""Hold many listening TCP sockets open in one process until stdin closes.

Run inside the namespace under test, as bench/conflicts_scale.py does:

    python -m bench.listeners 10000-14999,20000-24999

Raises RLIMIT_NOFILE as far as needed, binds 0.0.0.0:PORT for each port, prints `ready N` and waits.
It also exits by itself after --max-seconds, so it never outlives a benchmark that died.
"""

from __future__ import annotations

import argparse
import resource
import signal
import socket
import sys
from collections.abc import Sequence

SPARE_FDS = 64


def parse_ports(spec: str) -> list[int]:
    """ "10000-10002,20000" -> [10000, 10001, 10002, 20000]."""
    ports: list[int] = []
    for part in filter(None, spec.split(",")):
        first, _, last = part.partition("-")
        ports.extend(range(int(first), int(last or first) + 1))
    return ports


def raise_nofile(need: int) -> None:
    """Make room for `need` descriptors (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))


def open_listeners(ports: Sequence[int]) -> list[socket.socket]:
    """One listening TCP socket on 0.0.0.0 per port."""
    socks = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(8)
        socks.append(sock)
    return socks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listeners", description=__doc__.splitlines()[0])
    parser.add_argument("ports", help="ports and ranges, e.g. 10000-14999,20000-24999")
    parser.add_argument("--max-seconds", type=int, default=1800, help="exit by itself after this long")
    args = parser.parse_args(argv)
    ports = parse_ports(args.ports)
    raise_nofile(len(ports) + SPARE_FDS)
    signal.alarm(args.max_seconds)  # default action: terminate
    socks = open_listeners(ports)
    print(f"ready {len(socks)}", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
