"""The TUI left open with nothing changing: CPU of the app and every process it starts, over a window.

For each backend and each N (`--sizes`, default 0 and 10,000 Docker-shaped ports, beside the 3 running
containers of a sandboxed engine), the TUI of this checkout — change notifications, a full read every
60 s — and, with `--baseline CHECKOUT`, another checkout's TUI run at once in the same namespace on
pseudo-terminals. After `--warmup` seconds (first read, first paint), the CPU seconds each used in
`--window` seconds (default 60) are shown as % of one core.
Everything runs in namespaces made here and deleted afterwards.

    python -m bench.idle_cpu [--baseline /tmp/base] [--backends iptables-nft,nftables] [--window 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BACKENDS, CONTAINERS, log, machine_info, render_table, start_docker, write_json
from bench.tui_host import ENGINE_FOR, TuiProcess, filled_host
from tests.sandbox.engine import stop_engine

GOAL = 2.0  # % of one core, this checkout, at every size and backend


def measure(backend: str, n: int, docker_host: str, args: argparse.Namespace, ns_backend: str) -> list[list]:
    rows = []
    with filled_host(ns_backend, n, args.engines[ENGINE_FOR[backend]]) as ns:
        apps = {"portscope": TuiProcess(ns, docker_host)}
        if args.baseline:
            apps["baseline"] = TuiProcess(ns, docker_host, checkout=args.baseline)
        try:
            for app in apps.values():
                app.start()
            log(f"{backend} N={n}: warming up {args.warmup:g} s")
            time.sleep(args.warmup)
            before = {name: app.cpu_seconds() for name, app in apps.items()}
            started = time.monotonic()
            time.sleep(args.window)
            seconds = time.monotonic() - started
            for name, app in apps.items():
                used = app.cpu_seconds() - before[name]
                rows.append([backend, n, name, round(used, 2), f"{100 * used / seconds:.1f}%", app.received[0]])
        finally:
            for app in apps.values():
                app.stop()
    for row in rows:
        log(f"{backend} N={n}: {row[2]} {row[4]} of one core")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 10000], help="published ports per host")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured (default 60)")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring (default 20)")
    parser.add_argument("--baseline", help="another checkout to run beside this one, e.g. a worktree of main")
    parser.add_argument("--out", default="bench/results/idle_cpu.json")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    machine = machine_info()
    args.engines = {}
    rows: list[list] = []
    try:
        for flavour in sorted({ENGINE_FOR[b] for b in backends}):
            log(f"starting a sandboxed dockerd ({flavour}) with {len(CONTAINERS)} containers")
            args.engines[flavour] = start_docker(flavour)
        for backend in backends:
            engine = args.engines[ENGINE_FOR[backend]]
            for n in args.sizes:
                rows += measure(backend, n, engine.docker_host, args, backend)
    finally:
        for engine in args.engines.values():
            stop_engine(engine)
    print(f"machine: {machine}")
    print(render_table(["backend", "N", "app", "cpu s", "of one core", "bytes drawn"], rows))
    worst = max((float(r[4].rstrip("%")) for r in rows if r[2] == "portscope"), default=0.0)
    print(f"goal: <= {GOAL:g}% of one core at every size and backend: {'met' if worst <= GOAL else 'NOT met'} "
          f"(worst {worst:.1f}%)")  # fmt: skip
    write_json(args.out, {"benchmark": "idle_cpu", "machine": machine, "window_s": args.window, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
