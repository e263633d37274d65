"""TUI latency on a large host: a filter keystroke, and main-thread stalls during a refresh.

Run from the repository root (no root needed): `python -m bench.tui_latency [--bindings N] [--listeners N]`.

The snapshot is synthetic, built in code from core.model records (a load test, not a host):
N Docker-shaped DNATs with their containers, M listening sockets (some on published ports, so
there are findings). The app runs headless (`App.run_test`) at 120x36 with that snapshot.

- filter: time from a key press in the `/` bar until the Ports table has been re-rendered
  with the filtered rows (typing narrows 5,000 rows, backspace widens them again);
- refresh: a heartbeat timer (every 5 ms) on the main thread records the longest gap between
  two beats while a refresh reads, analyses (in the worker) and applies (in place) a changed
  snapshot; the first load is reported too.

Target: under 100 ms for both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.widgets import Input

from portscope.core.model import (
    BackendStatus,
    Chain,
    Container,
    ContainerNetwork,
    EngineInfo,
    HostFacts,
    IfaceMatch,
    Matches,
    NatTarget,
    PortMapping,
    PortRange,
    Rule,
    Snapshot,
    Socket,
    Table,
)
from portscope.tui.app import PortscopeApp

REFRESHES = 5
FIRST_PORT = 10000
LISTENER_PORT = 20000


def _ip(n: int) -> str:
    return f"172.17.{2 + n // 250}.{2 + n % 250}"


def synthetic(bindings: int, listeners: int, shadowed: int = 100, generation: int = 0) -> Snapshot:
    """A host with `bindings` published ports (one container each) and `listeners` listening sockets.

    `generation` > 0 drops the first `generation*50` containers and adds as many new ones, as a refresh would.
    """
    drop = generation * 50
    numbers = list(range(drop, bindings + drop))
    docker = [
        Rule("iptables-nft", "ipv4", "nat", "DOCKER", pos, text, Matches(protocol="tcp", dports=(PortRange(p, p),),
             in_iface=IfaceMatch("docker0", negated=True)), "dnat", nat=NatTarget(_ip(n), PortRange(80, 80)))
        for pos, n in enumerate(numbers, start=1)
        for p in [FIRST_PORT + n]
        for text in [f"-A DOCKER ! -i docker0 -p tcp -m tcp --dport {p} -j DNAT --to-destination {_ip(n)}:80"]
    ]  # fmt: skip
    entry = Matches(dst_local=True)
    pre = Rule("iptables-nft", "ipv4", "nat", "PREROUTING", 1, "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
               entry, "jump", jump="DOCKER")  # fmt: skip
    out = Rule("iptables-nft", "ipv4", "nat", "OUTPUT", 1, "-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER",
               entry, "jump", jump="DOCKER")  # fmt: skip
    table = Table("iptables-nft", "ipv4", "nat")
    table.chains = {
        "PREROUTING": Chain("PREROUTING", hook="prerouting", kind="nat", policy="ACCEPT", parsed=[pre]),
        "OUTPUT": Chain("OUTPUT", hook="output", kind="nat", policy="ACCEPT", parsed=[out]),
        "DOCKER": Chain("DOCKER", parsed=docker),
    }
    containers = [
        Container(
            id=f"{n:064x}",
            name=f"svc-{n}",
            image="registry.example/app:1.0",
            state="running",
            network_mode="bridge",
            networks=(ContainerNetwork("bridge", _ip(n), None),),
            requested=(PortMapping(80, "tcp", "", str(FIRST_PORT + n)),),
            in_force=(PortMapping(80, "tcp", "0.0.0.0", str(FIRST_PORT + n)),),
        )
        for n in numbers
    ]
    sockets = [
        Socket("ipv4", "tcp", "0.0.0.0", LISTENER_PORT + n, pid=1000 + n % 500, process=f"worker{n % 500}",
               cmdline=(f"/usr/bin/worker{n % 500}", "--port", str(LISTENER_PORT + n)))
        for n in range(listeners - shadowed)
    ]  # fmt: skip
    sockets += [
        Socket("ipv4", "tcp", "127.0.0.1", FIRST_PORT + drop + n, pid=9000 + n, process="devserver",
               cmdline=("python3", "devserver.py"))
        for n in range(shadowed)
    ]  # fmt: skip
    host = HostFacts(
        hostname="bench",
        kernel="6.1",
        is_root=True,
        addresses=("10.0.0.1", "127.0.0.1", "172.17.0.1"),
        ephemeral_range=PortRange(32768, 60999),
        networks=(("eth0", "10.0.0.1/24"), ("docker0", "172.17.0.1/16"), ("lo", "127.0.0.1/8")),
    )
    return Snapshot(
        host=host,
        taken_at=f"2026-01-01T00:00:{generation:02d}+00:00",
        backends=[BackendStatus("iptables-nft", "ipv4", read=True, rules=len(docker) + 2)],
        tables=[table],
        sockets=sockets,
        engine=EngineInfo(reachable=True, endpoint="unix:///var/run/docker.sock", version="27.0", name="Docker Engine"),
        containers=containers,
    )


class BenchApp(PortscopeApp):
    """The app, noting when the screen has been repainted after a filter change."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.painted: dict[str, float] = {}

    def on_input_changed(self, event: Input.Changed) -> None:  # runs before PortscopeApp's handler filters
        self.call_after_refresh(lambda: self.painted.setdefault("t", time.perf_counter()))


class Heartbeat:
    """A 5 ms main-thread timer that records the longest gap between two beats."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.max_gap = 0.0

    def beat(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now

    def reset(self) -> None:
        self.last = time.perf_counter()
        self.max_gap = 0.0


async def _until(condition, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not get there")
        await asyncio.sleep(0.002)


async def run(bindings: int, listeners: int) -> dict[str, float]:
    snaps = [synthetic(bindings, listeners, generation=g) for g in range(REFRESHES + 1)]
    calls = {"n": 0}

    def load() -> Snapshot:
        n = calls["n"]
        calls["n"] += 1
        return snaps[min(n, len(snaps) - 1)]

    app = BenchApp(load, refresh=0)
    heart = Heartbeat()
    result: dict[str, float] = {}
    async with app.run_test(size=(120, 36)) as pilot:
        app.set_interval(0.005, heart.beat)
        heart.reset()
        await _until(lambda: app.reads >= 1 and not app.reading)
        await pilot.pause()
        result["first load (with the first layout): longest stall (ms)"] = heart.max_gap * 1000
        table = app.view("ports").table
        assert table.row_count == bindings, table.row_count

        # A filter keystroke: key press -> table synced -> screen refreshed.
        painted = app.painted
        await pilot.press("slash")
        latencies = []
        for key in ("s", "v", "c", "minus", "1", "2", "backspace", "backspace", "4", "9", "9", "9", "backspace"):
            painted.clear()
            t0 = time.perf_counter()
            await pilot.press(key)
            await _until(lambda: "t" in painted)
            latencies.append(painted["t"] - t0)
        await pilot.press("escape")
        result["filter keystroke: median (ms)"] = statistics.median(latencies) * 1000
        result["filter keystroke: worst (ms)"] = max(latencies) * 1000

        # Refreshes with a changed snapshot each time (50 containers gone, 50 new; listeners moved).
        stalls = []
        for reads in range(2, 2 + REFRESHES):
            await pilot.pause()
            heart.reset()
            app.action_refresh()
            await _until(lambda r=reads: app.reads >= r and not app.reading)
            await pilot.pause()
            await pilot.pause()
            stalls.append(heart.max_gap)
        result["refresh: longest stall, median of runs (ms)"] = statistics.median(stalls) * 1000
        result["refresh: longest stall, worst run (ms)"] = max(stalls) * 1000
        assert table.row_count == bindings
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindings", type=int, default=5000)
    parser.add_argument("--listeners", type=int, default=10000)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    result = asyncio.run(run(args.bindings, args.listeners))
    print(f"portscope TUI latency: {args.bindings:,} bindings, {args.listeners:,} listeners (120x36, headless)")
    for name, value in result.items():
        verdict = "ok" if value < 100 else "SLOW"
        print(f"  {name:<54} {value:8.1f}  {verdict}")
    load = os.getloadavg()[0]
    print(
        f"  (whole run {time.perf_counter() - t0:.1f} s; load average {load:.1f} on {os.cpu_count()} CPUs:"
        " wall-clock gaps include time other processes took)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
