"""Time from command to traffic: `portscope publish`/`unpublish` against `docker run -p`/`docker rm -f`.

For each Docker set-up (a sandboxed dockerd in its own namespace, tests/sandbox) and each round:
- `portscope publish pbw PORT:80` on a running busybox httpd without `-p`, then `portscope unpublish`;
- `docker run -d -p PORT:80 ...` of a new busybox httpd on the same port, then `docker rm -f` of it.
A poller in the client namespace (10.203.0.2) connects to 10.203.0.1:PORT in a loop (bounded) and
stamps the moment the port answers (or stops answering). Start and stamp come from the same
CLOCK_MONOTONIC, so a row's time is "command started" to "traffic flows / is gone", including
the command's own run time (shown apart). Nothing leaves the namespaces.

    python -m bench.publish_vs_docker [--rounds 5] [--setups nft-proxy,legacy-noproxy]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.sandbox.client import Client, start_client, stop_client  # noqa: E402
from tests.sandbox.engine import (  # noqa: E402
    IMAGE,
    SETUPS,
    Engine,
    client_ns_name,
    ensure_image,
    start_engine,
    stop_engine,
    wait_for,
)

PORT = 18500
WEB_CMD = "echo bench > /www/index.html && exec httpd -f -p 80 -h /www"
#: Runs in the client namespace: prints "ready", then the monotonic time at which host:port answers (want=up)
#: or stops answering (want=down); "timeout" after `limit` seconds.
POLLER = r"""
import socket, sys, time
host, port, want, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
def answers():
    try:
        s = socket.create_connection((host, port), timeout=0.3)
    except OSError:
        return False
    data = b""
    try:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.settimeout(0.5)
        while chunk := s.recv(4096):
            data += chunk
    except OSError:
        pass
    finally:
        s.close()
    return b"bench" in data
print("ready", flush=True)
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    if answers() == (want == "up"):
        print(time.monotonic(), flush=True)
        sys.exit(0)
    time.sleep(0.005)
print("timeout", flush=True)
"""


@dataclass
class Sample:
    to_traffic: list[float] = field(default_factory=list)  # seconds
    command: list[float] = field(default_factory=list)
    failures: int = 0


def timed(engine: Engine, client: Client, argv: Sequence[str], env: dict[str, str], want: str) -> tuple[float, float]:
    """(command start -> traffic state `want`, command run time); raises if the state never comes."""
    poller = subprocess.Popen(
        client.ns.argv([sys.executable, "-c", POLLER, client.engine_ip, str(PORT), want, "30"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert poller.stdout is not None
    if poller.stdout.readline().strip() != "ready":
        raise RuntimeError("the poller did not start")
    start = time.monotonic()
    proc = subprocess.run(engine.ns.argv(list(argv)), env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    command = time.monotonic() - start
    stamp = poller.stdout.readline().strip()
    poller.wait(timeout=40)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {proc.stderr.strip()[-300:]}")
    if stamp == "timeout" or not stamp:
        raise RuntimeError(f"{' '.join(argv[:3])}: traffic never became {want}")
    return float(stamp) - start, command


def run_round(
    engine: Engine,
    client: Client,
    env: dict[str, str],
    steps: Sequence[tuple[str, Sequence[str], str]],
    samples: dict[str, Sample],
    label: str,
) -> bool:
    """Time each (name, argv, want) step into `samples`; False (after noting it) when one fails."""
    for name, argv, want in steps:
        try:
            to_traffic, command = timed(engine, client, argv, env, want)
        except RuntimeError as exc:
            print(f"{label}: {exc}", file=sys.stderr)
            samples[name].failures += 1
            return False
        samples[name].to_traffic.append(to_traffic)
        samples[name].command.append(command)
    return True


def bench_setup(setup_id: str, rounds: int) -> dict[str, Sample]:
    setup = next(s for s in SETUPS if s.id == setup_id)
    engine = start_engine(setup)
    client = None
    samples = {name: Sample() for name in ("portscope publish", "portscope unpublish", "docker run -p", "docker rm -f")}
    try:
        ensure_image(engine)
        client = start_client(engine.ns, name=client_ns_name(engine.ns.name))
        engine.run_container("pbw", IMAGE, "sh", "-c", WEB_CMD)
        ip = engine.inspect("pbw")[0]["NetworkSettings"]["IPAddress"]
        if not wait_for(lambda: client_ok(engine, ip), timeout=30):
            raise RuntimeError("the bench container never served")
        env = engine.env()
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["PORTSCOPE_STATE_DIR"] = tempfile.mkdtemp(prefix="psbench-")
        cli = [sys.executable, "-m", "portscope"]
        docker = ["/usr/bin/docker"]
        web = [IMAGE, "sh", "-c", WEB_CMD]
        for i in range(rounds):
            steps = [
                ("portscope publish", [*cli, "publish", "pbw", f"{PORT}:80"], "up"),
                ("portscope unpublish", [*cli, "unpublish", f"{PORT}/tcp"], "down"),
                ("docker run -p", [*docker, "run", "-d", "--name", f"pbd{i}", "-p", f"{PORT}:80", *web], "up"),
                ("docker rm -f", [*docker, "rm", "-f", f"pbd{i}"], "down"),
            ]
            if not run_round(engine, client, env, steps, samples, f"{setup_id} round {i}"):
                subprocess.run(engine.ns.argv([*docker, "rm", "-f", f"pbd{i}"]), env=env, capture_output=True)
                unpublish = engine.ns.argv([*cli, "unpublish", f"{PORT}/tcp"])
                subprocess.run(unpublish, env=env, cwd=REPO_ROOT, capture_output=True)
            print(f"{setup_id}: round {i + 1}/{rounds} done", file=sys.stderr)
    finally:
        if client is not None:
            stop_client(client)
        stop_engine(engine)
    return samples


def client_ok(engine: Engine, ip: str) -> bool:
    from tests.sandbox.client import tcp_get

    return tcp_get(engine.ns, ip, 80, timeout=2) is not None


def table(results: dict[str, dict[str, Sample]]) -> str:
    headers = ("set-up", "operation", "to traffic (median ms)", "min-max ms", "command (median ms)", "rounds", "failed")
    rows = []
    for setup_id, samples in results.items():
        for name, s in samples.items():
            if not s.to_traffic:
                rows.append((setup_id, name, "-", "-", "-", "0", str(s.failures)))
                continue
            rows.append(
                (
                    setup_id,
                    name,
                    f"{statistics.median(s.to_traffic) * 1000:.0f}",
                    f"{min(s.to_traffic) * 1000:.0f}-{max(s.to_traffic) * 1000:.0f}",
                    f"{statistics.median(s.command) * 1000:.0f}",
                    str(len(s.to_traffic)),
                    str(s.failures),
                )
            )
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(tuple("-" * w for w in widths)), *map(line, rows)])


def run_setups(
    doc: str, bench_setup: Callable[[str, int], dict[str, Sample]], argv: Sequence[str] | None, rounds: int
) -> int:
    """The command line of a command-to-traffic bench: parse, run `bench_setup` per set-up, print the table."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds, help=f"rounds per set-up (default {rounds})")
    parser.add_argument("--setups", default=",".join(s.id for s in SETUPS), help="comma-separated set-up ids")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: the benchmark starts dockerd in network namespaces", file=sys.stderr)
        return 4
    load = os.getloadavg()
    results = {setup_id: bench_setup(setup_id, args.rounds) for setup_id in args.setups.split(",")}
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(table(results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_setups(__doc__ or "", bench_setup, argv, rounds=5)


if __name__ == "__main__":
    sys.exit(main())
