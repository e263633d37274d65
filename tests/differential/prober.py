"""A side's prober (run as a script inside the side's namespace; standard library only).

Reads one JSON line per batch from standard input: {"timeout": seconds, "probes": [[proto, saddr, daddr,
port], ...]}; sends every probe at once (a thread each, a fresh socket and source port each) and writes one
JSON line: the answers in order, each the text that came back or null. Exits when standard input closes.

    python prober.py
"""

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor


def probe(protocol: str, saddr: str, daddr: str, port: int, timeout: float) -> str | None:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        try:
            sock.bind((saddr, 0))
            sock.connect((daddr, port))  # UDP: connected, so an ICMP port unreachable ends the wait
            if kind == socket.SOCK_DGRAM:
                sock.send(b"probe")
            data = sock.recv(2048)
            while kind == socket.SOCK_STREAM and data and (more := sock.recv(2048)):
                data += more
        except OSError:  # refused, unreachable, timed out: no answer
            return None
    return data.decode("utf-8", "replace") or None


def main() -> None:
    with ThreadPoolExecutor(max_workers=64) as pool:
        for line in sys.stdin:
            batch = json.loads(line)
            timeout = float(batch["timeout"])
            futures = [pool.submit(probe, *p, timeout) for p in batch["probes"]]
            print(json.dumps([f.result() for f in futures]), flush=True)


if __name__ == "__main__":
    main()
