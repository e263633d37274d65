"""`portscope conflicts --json` against `list --json` at 1,000 and 10,000 DNAT rules and listening sockets.

Run as root from the repository root: `python -m bench.conflicts_scale` (options: --help; see bench/README.md).

For each N, a fresh network namespace gets N Docker-shaped published ports (iptables-nft by default)
and one helper process (bench/listeners.py) holding N listening TCP sockets: half of them on
published ports (each a shadowed-listener conflict), half on other ports. Both commands run with
DOCKER_HOST at a missing socket, timed in interleaved rounds; at the largest N, bench/probe.py
times each stage of `conflicts` in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import (
    MISSING_DOCKER_HOST,
    REPO_ROOT,
    RESULTS_DIR,
    BenchError,
    Timing,
    add_timing_options,
    count_bindings,
    fill,
    log,
    machine_info,
    measure,
    missing_prerequisites,
    portscope_cmd,
    portscope_env,
    ratio,
    render_table,
    run_probe,
    stage_labels,
    stage_value,
    synthetic_port,
    write_json,
)
from tests.sandbox.netns import NetNs, netns

SIZES = (0, 1000, 10000)
LIST = "list --json"
CONFLICTS = "conflicts --json"
GOAL_SLOPE_RATIO = 2.0  # per-unit cost of the last step <= 2 x the step before: linear growth


@dataclass
class Cell:
    """One N: medians of both commands and what their warm-up outputs held."""

    n: int
    timings: dict[str, Timing]
    findings: dict[str, int]
    bindings: int
    breakdown: dict[str, Any] | None = None

    def median(self, label: str) -> float:
        return self.timings[label].median

    @property
    def runs(self) -> int:
        return min(len(t.wall) for t in self.timings.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "n_rules": self.n,
            "n_sockets": self.n,
            "list_s": self.median(LIST),
            "conflicts_s": self.median(CONFLICTS),
            "runs": self.runs,
            "timings": {k: v.to_json() for k, v in self.timings.items()},
            "findings": self.findings,
            "bindings": self.bindings,
            "breakdown": self.breakdown,
        }


def listener_ports(n: int) -> str:
    """Port spec for N listeners: the first half on published ports, the rest on ports nothing publishes."""
    shadowed = n // 2
    spec = []
    if shadowed:
        spec.append(f"{synthetic_port(0)}-{synthetic_port(shadowed - 1)}")
    if n - shadowed:
        spec.append(f"{synthetic_port(n)}-{synthetic_port(2 * n - shadowed - 1)}")
    return ",".join(spec)


@contextlib.contextmanager
def listeners(ns: NetNs, n: int) -> Iterator[None]:
    """N listening sockets held by one helper process inside `ns`, closed (and the helper ended) afterwards."""
    if n == 0:
        yield
        return
    argv = ns.argv([sys.executable, "-m", "bench.listeners", listener_ports(n)])
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=portscope_env(MISSING_DOCKER_HOST),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != f"ready {n}":
            raise BenchError(f"bench.listeners did not open {n} sockets (said {line!r}, exit {proc.poll()})")
        yield
    finally:
        _end(proc)


def _end(proc: subprocess.Popen[str]) -> None:
    """Close the helper's stdin (it exits), or kill it if it does not."""
    with contextlib.suppress(OSError):
        if proc.stdin:
            proc.stdin.close()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def findings_by_kind(conflicts_json: str) -> dict[str, int]:
    """Number of findings of each kind in a `conflicts --json` document."""
    return dict(Counter(f["kind"] for f in json.loads(conflicts_json)["findings"]))


def bench_cell(n: int, args: argparse.Namespace) -> Cell:
    """N rules and N sockets in a fresh namespace; time list and conflicts there."""
    with netns("psb") as ns:
        load_s = fill(ns, args.backend, n)
        with listeners(ns, n):
            log(f"N={n}: rules loaded in {load_s:.1f} s, {n} sockets open; timing")
            cmds = [
                portscope_cmd(ns, LIST, "list", MISSING_DOCKER_HOST),
                portscope_cmd(ns, CONFLICTS, "conflicts", MISSING_DOCKER_HOST),
            ]
            timings, outputs = measure(cmds, runs=args.runs, budget=args.budget)
            _, synthetic = count_bindings(outputs[LIST], n)
            if synthetic != n:
                log(f"WARNING: list --json found {synthetic} of {n} synthetic ports: timings are suspect")
            cell = Cell(n, timings, findings_by_kind(outputs[CONFLICTS]), synthetic)
            if args.breakdown and n == max(args.sizes):
                cell.breakdown = run_probe(ns, "conflicts", MISSING_DOCKER_HOST)
    log(f"N={n}: list {cell.median(LIST):.3f} s, conflicts {cell.median(CONFLICTS):.3f} s ({cell.runs} runs)")
    return cell


def slope_ratio(cells: Sequence[Cell], label: str) -> float | None:
    """Per-unit cost over the last step / over the step before (1.0 = linear); None if undefined."""
    if len(cells) < 3:
        return None
    a, b, c = cells[-3:]
    low = (b.median(label) - a.median(label)) / (b.n - a.n)
    high = (c.median(label) - b.median(label)) / (c.n - b.n)
    return high / low if low > 0 else None


def report(cells: Sequence[Cell], backend: str) -> str:
    headers = ["rules", "sockets", "list s", "conflicts s", "diagnose +s", "conflicts/list", "findings", "runs"]
    rows = [
        [c.n, c.n, c.median(LIST), c.median(CONFLICTS), c.median(CONFLICTS) - c.median(LIST),
         ratio(c.median(CONFLICTS), c.median(LIST)), sum(c.findings.values()), c.runs]
        for c in cells
    ]  # fmt: skip
    parts = ["", f"portscope conflicts --json vs list --json ({backend}, no Docker socket; wall-clock medians, s)", ""]
    parts.append(render_table(headers, rows))
    parts += ["", "findings at the largest N: " + ", ".join(f"{k} {v}" for k, v in sorted(cells[-1].findings.items()))]
    parts += ["", "Growth (per-unit cost of the last step / the step before; 1.0 = linear)", ""]
    parts.append(growth_table(cells))
    if cells[-1].breakdown:
        parts += ["", f"Where conflicts spends its time at N={cells[-1].n} (one in-process run per stage)", ""]
        parts.append(breakdown_table(cells[-1].breakdown))
    return "\n".join(parts)


def growth_table(cells: Sequence[Cell]) -> str:
    rows = []
    for label in (LIST, CONFLICTS):
        slope = slope_ratio(cells, label)
        added = [f"{c.median(label) - cells[0].median(label):.3f}" for c in cells[1:]]
        verdict = "-" if slope is None else ("linear" if slope <= GOAL_SLOPE_RATIO else "SUPERLINEAR")
        rows.append([label, " / ".join(added), "-" if slope is None else f"{slope:.2f}x", verdict])
    span = " / ".join(f"+s at {c.n}" for c in cells[1:])
    return render_table(["command", span, "slope ratio", "verdict"], rows)


def breakdown_table(bd: dict[str, Any]) -> str:
    rows: list[list[Any]] = [[label, stage_value(bd, label)] for label in stage_labels([bd])]
    rows += [[f"count: {k}", v] for k, v in bd["counts"].items()]
    return render_table(["stage", "s"], rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.conflicts_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS_DIR / "conflicts_scale.json"), help="JSON results file")
    parser.add_argument("--backend", choices=("iptables-nft", "iptables-legacy", "nftables"), default="iptables-nft")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="rules = sockets per step")
    add_timing_options(parser)
    args = parser.parse_args(argv)
    args.sizes = sorted(set(args.sizes))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problems = missing_prerequisites(["ip", "nsenter", "iptables-nft-restore", "iptables-legacy-restore", "nft"])
    if problems:
        print("conflicts_scale: " + "; ".join(problems), file=sys.stderr)
        return 2
    started = time.perf_counter()
    machine = machine_info()
    try:
        cells = [bench_cell(n, args) for n in args.sizes]
    except BenchError as exc:
        print(f"conflicts_scale: {exc}", file=sys.stderr)
        return 1
    print(report(cells, args.backend))
    doc = {
        "benchmark": "conflicts_scale",
        "machine": {**machine, "loadavg_end": os.getloadavg()},
        "config": {"backend": args.backend, "sizes": args.sizes, "runs": args.runs, "budget_s": args.budget},
        "cells": [c.to_json() for c in cells],
        "elapsed_s": time.perf_counter() - started,
    }
    path = write_json(args.out, doc)
    load = f"{machine['loadavg'][0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print(f"\nresults: {path} (elapsed {doc['elapsed_s']:.0f} s; 1-minute load average {load})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
