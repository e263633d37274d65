"""`portscope list --json` against the plain tools a user would run for the same answer, 0 to 10,000 ports.

Run as root from the repository root: `python -m bench.list_vs_tools` (options: --help; see bench/README.md).

For each backend (iptables-nft, iptables-legacy, native nftables) a sandboxed dockerd of that iptables
flavour runs a few real containers (none for native nftables: Docker 20.10 has no nftables backend).
For each N, a fresh network namespace gets the engine's own rules plus N Docker-shaped published ports,
and portscope (with the engine's DOCKER_HOST, and with a missing socket) and the plain tools
(iptables-save + ip6tables-save or `nft -j list ruleset`, `ss -tanup`, `docker ps`) are timed in
interleaved rounds. Goal (a) divides by what the plain tools add on iptables-nft; for the other
backends that reference is timed in the same rounds (`iptables-nft-save` in a second namespace
holding the same N ports on iptables-nft), so a machine that speeds up or slows down between
backends moves both sides of the comparison alike. At the largest N, bench/probe.py times each stage
of portscope in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    BACKENDS,
    CONTAINERS,
    DOCKER_CLIENT,
    MISSING_DOCKER_HOST,
    RESULTS_DIR,
    BenchError,
    Cmd,
    Timing,
    add_timing_options,
    baseline_of,
    count_bindings,
    docker_env,
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
    save_tool,
    stage_labels,
    stage_value,
    start_docker,
    time_python,
    tool_cmd,
    write_json,
)
from tests.sandbox.engine import TOOLS, Engine, stop_engine
from tests.sandbox.netns import NetNs, netns

SIZES = (0, 100, 1000, 5000, 10000)  # 5,000: the middle that the linearity goal compares halves at
PS_ENGINE = "portscope list --json"
PS_NO_DOCKER = "portscope list --json (no Docker socket)"
PS_BASELINE = "baseline list --json"
PS_BASELINE_NO_DOCKER = "baseline list --json (no Docker socket)"
GOAL_ADDED_RATIO = 1.5  # (a) portscope's added time <= 1.5 x the plain tools' on iptables-nft
GOAL_SLOPE_RATIO = 2.0  # (a) per-port cost over the upper half of N <= 2 x the lower half: "roughly linear"
GOAL_EMPTY_S = 0.25  # (b) N=0, no Docker socket
GOAL_BASELINE_RATIO = 1.2  # (c) with --baseline: at the largest N, list --json <= 1.2 x the baseline's
IMPORTS = (
    "import portscope.cli.main, portscope.cli.sources, portscope.core.live, portscope.core.inventory,"
    " portscope.cli.filters, portscope.cli.render_json"
)
STARTUP_ROW = "python start-up (python -c pass)"
SITE_ROW = "  of which site and its .pth files (minus python -S)"
IMPORTS_ROW = "imports (python -c 'import ...' minus start-up)"
MEASURED_ROW = "measured portscope (median of the timed runs)"
NO_ENGINE_NOTE = (
    "native nftables: no dockerd (Docker 20.10 has no nftables backend); portscope runs with DOCKER_HOST at a "
    "missing socket and the plain tools leave out `docker ps`"
)


@dataclass
class Cell:
    """One backend at one N: medians of every command, and what the warm-up outputs showed."""

    backend: str
    n: int
    load_s: float
    timings: dict[str, Timing]
    tools: list[str]
    checks: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, Any] | None = None
    baseline_breakdown: dict[str, Any] | None = None  # the --baseline checkout's bench/probe.py, same namespace
    reference_tools: list[str] = field(default_factory=list)  # iptables-nft's save tools, same N, same rounds

    def median(self, label: str) -> float | None:
        timing = self.timings.get(label)
        return timing.median if timing else None

    @property
    def compared(self) -> Timing:
        """The portscope run compared with the plain tools: with the engine when there is one, else without."""
        return self.timings[PS_ENGINE if PS_ENGINE in self.timings else PS_NO_DOCKER]

    @property
    def portscope(self) -> float:
        return self.compared.median

    @property
    def portscope_cpu(self) -> float:
        """CPU seconds (user+sys, with children) of `compared`."""
        return self.compared.cpu_median

    @property
    def plain(self) -> float:
        """Sum of the plain tools' medians."""
        return sum(self.timings[t].median for t in self.tools)

    @property
    def plain_cpu(self) -> float:
        """Sum of the plain tools' CPU medians."""
        return sum(self.timings[t].cpu_median for t in self.tools)

    @property
    def reference(self) -> float:
        """The plain tools on iptables-nft in the same rounds: this cell's own on iptables-nft, else the reference."""
        if not self.reference_tools:
            return self.plain
        return sum(self.timings[t].median for t in self.reference_tools)

    @property
    def runs(self) -> int:
        return min(len(t.wall) for t in self.timings.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "n": self.n,
            "load_rules_s": self.load_s,
            "portscope_s": self.portscope,
            "portscope_no_docker_s": self.median(PS_NO_DOCKER),
            "plain_tools_s": self.plain,
            "portscope_cpu_s": self.portscope_cpu,
            "plain_tools_cpu_s": self.plain_cpu,
            "plain_tools": self.tools,
            "reference_tools": self.reference_tools,
            "reference_s": self.reference,
            "runs": self.runs,
            "timings": {k: v.to_json() for k, v in self.timings.items()},
            "checks": self.checks,
            "breakdown": self.breakdown,
            "baseline_breakdown": self.baseline_breakdown,
        }


# --------------------------------------------------------------------------- one cell


def commands(
    ns: NetNs, backend: str, engine: Engine | None, baseline: str | None = None
) -> tuple[list[Cmd], list[str]]:
    """(every command to time, the labels of the plain tools among them); `baseline`: another checkout too."""
    cmds = []
    if engine is not None:
        cmds.append(portscope_cmd(ns, PS_ENGINE, "list", engine.docker_host))
        if baseline:
            cmds.append(portscope_cmd(ns, PS_BASELINE, "list", engine.docker_host, baseline))
    cmds.append(portscope_cmd(ns, PS_NO_DOCKER, "list", MISSING_DOCKER_HOST))
    if baseline:
        cmds.append(portscope_cmd(ns, PS_BASELINE_NO_DOCKER, "list", MISSING_DOCKER_HOST, baseline))
    if backend == "nftables":
        tools = [tool_cmd(ns, ["nft", "-j", "list", "ruleset"])]
    else:
        tools = [tool_cmd(ns, [save_tool(backend, family)]) for family in (4, 6)]
    tools.append(tool_cmd(ns, ["ss", "-tanup"]))
    if engine is not None:
        tools.append(tool_cmd(ns, [DOCKER_CLIENT, "ps"], docker_env(engine), label="docker ps"))
    return cmds + tools, [t.label for t in tools]


def check_outputs(outputs: dict[str, str], n: int) -> dict[str, Any]:
    """What the warm-up runs printed: portscope must list all N synthetic ports (else its timing means nothing)."""
    checks: dict[str, Any] = {}
    for label in (PS_ENGINE, PS_NO_DOCKER):
        if label in outputs:
            total, synthetic = count_bindings(outputs[label], n)
            checks[label] = {"bindings": total, "synthetic_found": synthetic, "json_bytes": len(outputs[label])}
            if synthetic != n:
                log(f"WARNING: {label} listed {synthetic} of the {n} synthetic ports: its timing is suspect")
    return checks


def reference_commands(ns: NetNs) -> list[Cmd]:
    """iptables-nft's save tools in `ns` (filled with the same N ports on iptables-nft), labelled as the reference."""
    return [tool_cmd(ns, [save_tool("iptables-nft", f)], label=f"reference: {save_tool('iptables-nft', f)}")
            for f in (4, 6)]  # fmt: skip


def bench_cell(
    backend: str, n: int, engine: Engine | None, baseline: dict[int, str] | None, args: argparse.Namespace
) -> Cell:
    """Fill a fresh namespace with N ports and time portscope and the plain tools in it (and, for a backend
    other than iptables-nft, iptables-nft's save tools on the same N ports in a second namespace)."""
    with netns("psb") as ns, netns("psbref") as ref:
        load_s = fill(ns, backend, n, baseline)
        cmds, tools = commands(ns, backend, engine, args.baseline)
        reference: list[str] = []
        if backend != "iptables-nft" and args.reference:
            fill(ref, "iptables-nft", n)
            extra = reference_commands(ref)
            cmds += extra
            reference = [c.label for c in extra]
        log(f"{backend} N={n}: rules loaded in {load_s:.1f} s; timing")
        timings, outputs = measure(cmds, runs=args.runs, budget=args.budget)
        cell = Cell(backend, n, load_s, timings, tools, check_outputs(outputs, n), reference_tools=reference)
        if args.breakdown and n == max(args.sizes):
            cell.breakdown = breakdown(ns, engine, args.runs)
            if args.baseline:
                cell.baseline_breakdown = baseline_probe(ns, engine, args.baseline)
    log(f"{backend} N={n}: portscope {cell.portscope:.3f} s, plain tools {cell.plain:.3f} s ({cell.runs} runs)")
    if args.baseline:
        log(f"{backend} N={n}: baseline {args.baseline}: {baseline_text(cell)}")
    return cell


def baseline_text(cell: Cell) -> str:
    """This checkout against `--baseline`, in the same rounds: medians and the change, per Docker column."""
    parts = []
    for mine, theirs in ((PS_ENGINE, PS_BASELINE), (PS_NO_DOCKER, PS_BASELINE_NO_DOCKER)):
        if mine in cell.timings and theirs in cell.timings:
            a, b = cell.median(mine), cell.median(theirs)
            parts.append(f"{mine} {a:.3f} s vs {b:.3f} s ({(a - b) / b:+.0%})")
    return "; ".join(parts)


def breakdown(ns: NetNs, engine: Engine | None, runs: int) -> dict[str, Any]:
    """Interpreter start-up and imports (medians of separate processes), then each stage in-process."""
    startup = time_python(ns, "pass", runs)
    site = max(startup - time_python(ns, "pass", runs, flags=["-S"]), 0.0)
    imported = time_python(ns, IMPORTS, runs)
    probe = run_probe(ns, "list", engine.docker_host if engine else MISSING_DOCKER_HOST)
    return {"python_startup_s": startup, "site_s": site, "imports_s": max(imported - startup, 0.0), **probe}


def baseline_probe(ns: NetNs, engine: Engine | None, checkout: str) -> dict[str, Any] | None:
    """The --baseline checkout's own bench/probe.py, run from it in `ns` (None when it has none or it fails)."""
    if not os.path.exists(os.path.join(checkout, "bench", "probe.py")):
        return None
    argv = ns.argv([sys.executable, "-m", "bench.probe", "list"])
    env = portscope_env(engine.docker_host if engine else MISSING_DOCKER_HOST)
    proc = subprocess.run(argv, env=env, cwd=checkout, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        log(f"baseline bench.probe exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return None
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- one backend


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """All sizes for one backend, with its sandboxed engine (if any) started once and stopped at the end."""
    engine = None
    notes = []
    try:
        if backend == "nftables":
            notes.append(NO_ENGINE_NOTE)
            baseline = None
        else:
            log(f"{backend}: starting a sandboxed dockerd with {len(CONTAINERS)} containers")
            engine = start_docker(backend)
            baseline = baseline_of(engine)
        cells = [bench_cell(backend, n, engine, baseline, args) for n in args.sizes]
    finally:
        if engine is not None:
            stop_engine(engine)
    return {"backend": backend, "notes": notes, "cells": cells}


# --------------------------------------------------------------------------- goals and tables


def added(cells: Sequence[Cell]) -> dict[str, float]:
    """Time added from the smallest to the largest N, for portscope, the plain tools and the iptables-nft reference."""
    lo, hi = cells[0], cells[-1]
    return {
        "portscope_s": hi.portscope - lo.portscope,
        "plain_tools_s": hi.plain - lo.plain,
        "reference_s": hi.reference - lo.reference,
        "portscope_cpu_s": hi.portscope_cpu - lo.portscope_cpu,
        "plain_tools_cpu_s": hi.plain_cpu - lo.plain_cpu,
    }


def slope_ratio(cells: Sequence[Cell], attr: str) -> float | None:
    """Per-port cost over the upper half of the sizes (5,000->10,000) / over the lower half (0->5,000).

    Linear growth gives ~1, quadratic ~3. Halves that both span thousands of ports keep the ratio
    clear of the noise that a 100->1,000 step (a few ms of change) drowns in. Without a middle size,
    the last step against the step before; None when undefined.
    """
    by_n = {c.n: c for c in cells}
    top, bottom = cells[-1], cells[0]
    middle = by_n.get((top.n + bottom.n) // 2)
    if middle is not None and bottom.n < middle.n < top.n:
        a, b, c = bottom, middle, top
    elif len(cells) >= 3:
        a, b, c = cells[-3:]
    else:
        return None
    low = (getattr(b, attr) - getattr(a, attr)) / (b.n - a.n)
    high = (getattr(c, attr) - getattr(b, attr)) / (c.n - b.n)
    return high / low if low > 0 else None


def goals(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Goal (a) on every backend, against the plain tools' added time on iptables-nft (as the issue states
    it: iptables-legacy-save is too fast to divide by), linearity, goal (b), and with --baseline goal (c); each
    PASS/FAIL and by how much.

    The reference for a backend is the one timed in its own rounds when there is one, else the
    iptables-nft backend's plain tools."""
    out = []
    nft = results.get("iptables-nft")
    fallback = added(nft["cells"])["plain_tools_s"] if nft else None
    for backend, res in results.items():
        cells = res["cells"]
        own = all(c.reference_tools for c in cells) and len(cells) > 1
        reference = added(cells)["reference_s"] if own else fallback
        if reference is not None and len(cells) > 1:
            add = added(cells)
            span = f"{cells[0].n}->{cells[-1].n}"
            name = (
                f"(a) {backend}: portscope's added time {span} <= {GOAL_ADDED_RATIO} x the plain tools' on iptables-nft"
            )
            out.append(_goal(name, add["portscope_s"], GOAL_ADDED_RATIO * reference, "s"))
        slope = slope_ratio(cells, "portscope_cpu")
        if slope is not None:
            out.append(_goal(f"(a) {backend}: roughly linear (CPU s per port, upper half of N / lower half)", slope,
                             GOAL_SLOPE_RATIO, "x"))  # fmt: skip
    for backend, res in results.items():
        empty = [c for c in res["cells"] if c.n == 0]
        if empty:
            value = empty[0].timings[PS_NO_DOCKER].median
            out.append(_goal(f"(b) {backend}: N=0, no Docker socket: list --json <= {GOAL_EMPTY_S} s", value,
                             GOAL_EMPTY_S, "s"))  # fmt: skip
    for backend, res in results.items():
        top = res["cells"][-1]
        for mine, theirs in ((PS_ENGINE, PS_BASELINE), (PS_NO_DOCKER, PS_BASELINE_NO_DOCKER)):
            if mine in top.timings and theirs in top.timings:
                name = f"(c) {backend}: N={top.n}, {mine} <= {GOAL_BASELINE_RATIO} x the baseline's"
                out.append(_goal(name, top.median(mine), GOAL_BASELINE_RATIO * top.median(theirs), "s"))
    return out


def _goal(name: str, value: float, limit: float, unit: str) -> dict[str, Any]:
    """PASS/FAIL of `value <= limit`; None (n/a) when the limit is not positive (sizes too small to measure)."""
    text = f"{value:.3f} {unit} vs limit {limit:.3f} {unit}"
    if limit <= 0:
        return {"goal": name, "value": value, "limit": limit, "pass": None, "text": text + " (too small to measure)"}
    passed = value <= limit
    if not passed:
        text += f" (over by {value - limit:.3f} {unit}: {value / limit:.1f}x the limit)"
    return {"goal": name, "value": value, "limit": limit, "pass": passed, "text": text}


def _verdict(goal: dict[str, Any]) -> str:
    return {True: "PASS", False: "FAIL", None: "N/A "}[goal["pass"]]


def main_table(results: dict[str, dict[str, Any]]) -> str:
    headers = ["backend", "N", "portscope s", "no Docker s", "plain tools s", "ratio", "portscope cpu s",
               "tools cpu s", "runs", "found"]  # fmt: skip
    rows = []
    for backend, res in results.items():
        for c in res["cells"]:
            found = c.checks.get(PS_NO_DOCKER, {}).get("synthetic_found")
            rows.append([backend, c.n, c.portscope, c.median(PS_NO_DOCKER), c.plain, ratio(c.portscope, c.plain),
                         c.portscope_cpu, c.plain_cpu, c.runs, found])  # fmt: skip
    return render_table(headers, rows)


def added_table(results: dict[str, dict[str, Any]]) -> str:
    headers = ["backend", "span", "portscope +s", "plain tools +s", "ratio", "cpu ratio", "iptables-nft ref +s",
               "linearity portscope", "linearity tools"]  # fmt: skip
    rows = []
    for backend, res in results.items():
        cells = res["cells"]
        if len(cells) < 2:
            continue
        add = added(cells)
        span = f"{cells[0].n}->{cells[-1].n}"
        rows.append([backend, span, add["portscope_s"], add["plain_tools_s"],
                     ratio(add["portscope_s"], add["plain_tools_s"]),
                     ratio(add["portscope_cpu_s"], add["plain_tools_cpu_s"]), add["reference_s"],
                     _fmt_x(slope_ratio(cells, "portscope_cpu")), _fmt_x(slope_ratio(cells, "plain_cpu"))])  # fmt: skip
    return render_table(headers, rows)


def _fmt_x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def tools_table(results: dict[str, dict[str, Any]]) -> str:
    """Each plain tool's median at the largest N."""
    rows = []
    for backend, res in results.items():
        cell = res["cells"][-1]
        for label in [*cell.tools, *cell.reference_tools]:
            rows.append([backend, cell.n, label, cell.timings[label].median, cell.timings[label].cpu_median])
        for label in (PS_ENGINE, PS_NO_DOCKER):
            if label in cell.timings:
                rows.append([backend, cell.n, label, cell.timings[label].median, cell.timings[label].cpu_median])
    return render_table(["backend", "N", "command", "wall s", "cpu s"], rows)


def breakdown_table(results: dict[str, dict[str, Any]]) -> str:
    """Stages of portscope at the largest N, one column per backend (and one for the --baseline checkout's
    own probe beside it, when there is one)."""
    columns: list[tuple[str, dict[str, Any], Cell, bool]] = []
    for backend, res in results.items():
        top = res["cells"][-1]
        if top.breakdown:
            columns.append((backend, top.breakdown, top, False))
        if top.baseline_breakdown:
            columns.append((f"{backend} baseline", top.baseline_breakdown, top, True))
    if not columns:
        return "(no breakdown)"
    stages = stage_labels([bd for _, bd, _, _ in columns])
    labels = [STARTUP_ROW, SITE_ROW, IMPORTS_ROW, *stages, MEASURED_ROW]
    rows = [[label, *(_stage(bd, label, cell, base) for _, bd, cell, base in columns)] for label in labels]
    return render_table(["stage (s)", *(name for name, _, _, _ in columns)], rows)


def _stage(bd: dict[str, Any], label: str, cell: Cell, baseline: bool = False) -> float | None:
    if label == MEASURED_ROW:
        if not baseline:
            return cell.portscope
        return cell.median(PS_BASELINE if PS_ENGINE in cell.timings else PS_BASELINE_NO_DOCKER)
    if label == STARTUP_ROW:
        return bd.get("python_startup_s")
    if label == SITE_ROW:
        return bd.get("site_s")
    if label == IMPORTS_ROW:
        return bd.get("imports_s")
    return stage_value(bd, label)


def report(results: dict[str, dict[str, Any]], goal_list: list[dict[str, Any]]) -> str:
    """Everything printed at the end."""
    parts = ["", "portscope list --json vs plain tools (wall-clock medians after a warm-up, seconds)", ""]
    parts.append(main_table(results))
    for res in results.values():
        parts.extend(f"note: {n}" for n in res["notes"])
    parts += ["", "Added time (largest N minus smallest N); linearity = CPU time per port over the upper half of N / "
              "over the lower half (1.0 = linear, ~3 = quadratic)", "", added_table(results)]  # fmt: skip
    parts += ["", "Each command at the largest N", "", tools_table(results)]
    parts += ["", "Where portscope's time goes at the largest N (one in-process run per stage; read_live runs "
              "rules, sockets and engine concurrently)", "", breakdown_table(results)]  # fmt: skip
    parts += ["", "Goals"]
    parts += [f"  {_verdict(g)}  {g['goal']}: {g['text']}" for g in goal_list]
    return "\n".join(parts)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.list_vs_tools", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS_DIR / "list_vs_tools.json"), help="JSON results file")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="numbers of published ports")
    parser.add_argument("--baseline", metavar="CHECKOUT",
                        help="also time `list --json` of another checkout (e.g. a `git worktree` of main) in the "
                        "same rounds, and print the change")  # fmt: skip
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="do not time iptables-nft's save tools beside the other backends (goal (a) then divides "
                             "by the iptables-nft backend's own rounds)")  # fmt: skip
    add_timing_options(parser)
    args = parser.parse_args(argv)
    args.sizes = sorted(set(args.sizes))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problems = missing_prerequisites([*TOOLS, "nft", "ss"])
    if problems:
        print("list_vs_tools: " + "; ".join(problems), file=sys.stderr)
        return 2
    started = time.perf_counter()
    machine = machine_info()
    try:
        results = {b: bench_backend(b, args) for b in args.backends}
    except BenchError as exc:
        print(f"list_vs_tools: {exc}", file=sys.stderr)
        return 1
    goal_list = goals(results)
    print(report(results, goal_list))
    doc = {
        "benchmark": "list_vs_tools",
        "machine": {**machine, "loadavg_end": os.getloadavg()},
        "config": {"sizes": args.sizes, "runs": args.runs, "budget_s": args.budget},
        "backends": {b: {**r, "cells": [c.to_json() for c in r["cells"]]} for b, r in results.items()},
        "goals": goal_list,
        "elapsed_s": time.perf_counter() - started,
    }
    path = write_json(args.out, doc)
    load = f"{machine['loadavg'][0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print(f"\nresults: {path} (elapsed {doc['elapsed_s']:.0f} s; 1-minute load average {load})")
    return 3 if any(g["pass"] is False for g in goal_list) else 0


if __name__ == "__main__":
    sys.exit(main())
