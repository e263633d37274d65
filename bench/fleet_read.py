"""`portscope list --json` over a fleet of 20 hosts reached by SSH, against the slowest host's own local read.

Run as root from the repository root: `python -m bench.fleet_read` (options: --help).

The hosts are network namespaces, each running its own sshd (tests/sandbox/ssh_hosts.py), reached from a client
namespace over veth links. Three run a sandboxed dockerd (iptables-nft, iptables-legacy, iptables-nft) with the
few containers bench/common.py starts; every host gets 1,000 Docker-shaped published ports (the engine hosts on
top of their engine's rules, the others on Docker's bare chains, rotating iptables-nft, iptables-legacy and
native nftables), loaded with bench/common.py's helpers. Then, in interleaved rounds (one warm-up, medians, as
bench/common.py's `measure` does): the fleet read from the client namespace over all hosts; every host's own
`list --json` in its namespace (as its sshd's sessions see it: same DOCKER_HOST and state folder); all those own
reads started at once (the same work on the same CPUs, without ssh); and the first host alone over ssh.
Goal: the fleet read's median is at most 1.5 times the slowest host's own. All hosts share this machine's
CPUs, which real hosts would not: the all-at-once figure says what the fleet read costs beyond that.

Then (unless --no-tui), on the same fleet, the fleet TUI once (bench/fleet_tui_driver.py, headless in the client
namespace): when the first host and all hosts are on screen, and how long a view switch sent every --pace seconds
takes to reach the screen while the hosts arrive, against the same keys once the read has ended.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.common import (
    CONTAINERS,
    MISSING_DOCKER_HOST,
    RESULTS_DIR,
    BenchError,
    Cmd,
    Timing,
    count_bindings,
    fill,
    iptables_ports,
    log,
    machine_info,
    measure,
    missing_prerequisites,
    portscope_env,
    render_table,
    restore,
    run_once,
    write_json,
)
from tests.sandbox import daemon, ssh_hosts
from tests.sandbox import engine as engine_sandbox
from tests.sandbox.engine import Setup, ensure_image
from tests.sandbox.ssh_hosts import Fleet, FleetHost, HostSpec, ssh_fleet

GOAL_RATIO = 1.5  # the fleet read <= 1.5 x the slowest single host's own read
ENGINE_SETUPS = (Setup("nft", True), Setup("legacy", True), Setup("nft", True))
OTHER_BACKENDS = ("iptables-nft", "iptables-legacy", "nftables")
FLEET = "fleet list --json (all hosts, over ssh)"
ALL_LOCAL = "every host's own list --json, all at once"
#: Runs every argv (with its env) of the JSON list in argv[1] at once and waits for all; exits non-zero if any did.
TOGETHER = (
    "import json, subprocess, sys\n"
    "procs = [subprocess.Popen(a, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) for a, e in "
    "json.loads(sys.argv[1])]\n"
    "sys.exit(max(p.wait() for p in procs))\n"
)


def specs(hosts: int, engines: int) -> list[HostSpec]:
    """h1..hN; the first `engines` run a sandboxed dockerd."""
    return [HostSpec(f"h{i + 1}", ENGINE_SETUPS[i % len(ENGINE_SETUPS)] if i < engines else None) for i in range(hosts)]


def backend_of(host: FleetHost, index: int) -> str:
    """The firewall backend the host's rules go into: its engine's iptables flavour, else a rotation."""
    if host.engine is not None:
        return f"iptables-{host.engine.setup.backend}"
    return OTHER_BACKENDS[index % len(OTHER_BACKENDS)]


def load_host(host: FleetHost, backend: str, ports: int) -> float:
    """Start the containers (engine hosts) and load `ports` Docker-shaped ports; returns the loading seconds."""
    if host.engine is None:
        return fill(host.ns, backend, ports)
    image = ensure_image(host.engine)
    for name, args in CONTAINERS.items():
        host.engine.run_container(name, *(a.format(image=image) for a in args))
    start = time.perf_counter()
    if ports:
        restore(host.ns, backend, iptables_ports(ports), noflush=True)
    return time.perf_counter() - start


def local_cmd(host: FleetHost) -> Cmd:
    """The host's own `python -m portscope list --json`, inside its namespace, with its sshd's environment."""
    env = portscope_env(host.docker_host)
    env["PORTSCOPE_STATE_DIR"] = str(host.state_dir)
    argv = host.ns.argv([sys.executable, "-m", "portscope", "list", "--json"])
    return Cmd(f"{host.alias} local list --json", tuple(argv), env)


def fleet_cmd(fleet: Fleet, aliases: Sequence[str], timeout: float, label: str) -> Cmd:
    """`python -m portscope list --json --host A ...` from the client namespace."""
    env = portscope_env(f"unix://{fleet.root / 'no-docker.sock'}")
    env["PORTSCOPE_SSH_COMMAND"] = fleet.ssh_command
    env["XDG_RUNTIME_DIR"] = str(fleet.runtime_dir)  # its own ssh control sockets
    hosts = [arg for alias in aliases for arg in ("--host", alias)]
    argv = fleet.portscope_argv("list", "--json", *hosts, "--timeout", str(timeout))
    return Cmd(label, tuple(argv), env)


def together_cmd(label: str, cmds: Sequence[Cmd]) -> Cmd:
    """One command that runs `cmds` all at once and waits for every one (what the fleet read asks of the CPUs)."""
    payload = json.dumps([[list(c.argv), dict(c.env or {})] for c in cmds])
    return Cmd(label, (sys.executable, "-c", TOGETHER, payload), portscope_env(MISSING_DOCKER_HOST))


def check_fleet(output: str, fleet: Fleet, ports: int) -> dict[str, Any]:
    """Every host must be in the fleet answer, read, with all its synthetic ports (else the timing means nothing)."""
    entries = json.loads(output)["fleet"]
    checks: dict[str, Any] = {}
    for entry in entries:
        found = None
        if entry["result"] is not None:
            found = count_bindings(json.dumps(entry["result"]), ports)[1]
        checks[entry["host"]] = {"reachable": entry["reachable"], "synthetic_found": found, "error": entry["error"]}
    problems = [a for a in fleet.hosts if checks.get(a, {}).get("synthetic_found") != ports]
    if problems:
        raise BenchError(f"the fleet read did not list all {ports} ports of {', '.join(problems)}: {checks}")
    return checks


def run_tui(fleet: Fleet, args: argparse.Namespace) -> dict[str, Any]:
    """The fleet TUI over every host, once (bench/fleet_tui_driver.py): arrivals and key latencies, summed up."""
    log(f"the fleet TUI over {len(fleet.hosts)} hosts, a view switch every {args.pace} s")
    cmd = fleet_cmd(fleet, list(fleet.hosts), args.timeout, "fleet TUI")
    argv = fleet.client_ns.argv([sys.executable, "-m", "bench.fleet_tui_driver", "--pace", str(args.pace),
                                 "--timeout", str(args.timeout), *fleet.hosts])  # fmt: skip
    _, _, output = run_once(Cmd(cmd.label, tuple(argv), cmd.env), capture=True)
    doc = json.loads(output)
    short = {h: v for h, v in doc["hosts"].items() if not v["reachable"] or v["ports"] < args.ports}
    if short:
        raise BenchError(f"the fleet TUI did not show all {args.ports} ports of every host: {short}")
    arrivals = doc["arrivals"]
    return {
        "reads_ended_s": [min(a["read_s"] for a in arrivals), max(a["read_s"] for a in arrivals)],
        "applied_s": [arrivals[0]["applied"], arrivals[-1]["applied"]],
        "first_shown_s": arrivals[0]["shown"],
        "all_shown_s": arrivals[-1]["shown"],
        "during": key_summary(doc["during"]),
        "idle": key_summary(doc["idle"]),
        "pace_s": args.pace,
        "raw": doc,
    }


def key_summary(keys: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst of key -> view switch run (`handled`) and key -> screen showing it (`shown`), seconds."""
    out: dict[str, Any] = {"keys": len(keys)}
    for stage in ("handled", "shown"):
        waits = [k[stage] - k["sent"] for k in keys]
        out[stage] = {"median_s": statistics.median(waits), "worst_s": max(waits)} if waits else None
    return out


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Timing]]:
    """Build the fleet and load it, then time in interleaved rounds: the fleet read, every host's own read, all of
    those at once, and the first host alone over ssh; (results, timings)."""
    with ssh_fleet(specs(args.hosts, args.engines)) as fleet:
        log(f"{len(fleet.hosts)} hosts up; loading {args.ports} ports on each")
        loads = {}
        for index, host in enumerate(fleet.hosts.values()):
            backend = backend_of(host, index)
            loads[host.alias] = {"backend": backend, "engine": host.engine is not None,
                                 "load_s": load_host(host, backend, args.ports)}  # fmt: skip
        own_reads = {alias: local_cmd(host) for alias, host in fleet.hosts.items()}
        first = next(iter(fleet.hosts))
        alone = fleet_cmd(fleet, [first], args.timeout, f"{first} alone over ssh")
        cmds = [
            fleet_cmd(fleet, list(fleet.hosts), args.timeout, FLEET),
            *own_reads.values(),
            together_cmd(ALL_LOCAL, list(own_reads.values())),
            alone,
        ]
        log(f"timing {len(cmds)} commands in interleaved rounds")
        try:
            timings, outputs = measure(cmds, runs=args.runs, budget=args.budget)
        except BenchError as exc:
            last = list(fleet.hosts.values())[-1]
            raise BenchError(f"{exc}\n{last.alias}'s sshd log:\n{daemon.log_tail(last.root / 'sshd.log')}") from exc
        for cmd in own_reads.values():
            found = count_bindings(outputs[cmd.label], args.ports)[1]
            if found != args.ports:
                raise BenchError(f"{cmd.label} listed {found} of the {args.ports} synthetic ports")
        checks = check_fleet(outputs[FLEET], fleet, args.ports)
        tui = run_tui(fleet, args) if args.tui else None
        slowest = max(own_reads, key=lambda alias: timings[own_reads[alias].label].median)
        result = {
            "hosts": loads,
            "timings": {label: t.to_json() for label, t in timings.items()},
            "slowest": slowest,
            "fleet_label": FLEET,
            "slowest_label": own_reads[slowest].label,
            "alone_label": alone.label,
            "first_label": own_reads[first].label,
            "own_labels": {alias: cmd.label for alias, cmd in own_reads.items()},
            "checks": checks,
            "tui": tui,
        }
        return result, timings


def report(result: dict[str, Any], timings: dict[str, Timing], args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The printed report and the goal's verdict."""
    fleet, slowest = timings[result["fleet_label"]], timings[result["slowest_label"]]
    together, alone, first = timings[ALL_LOCAL], timings[result["alone_label"]], timings[result["first_label"]]
    ratio = fleet.median / slowest.median
    goal = {"goal": f"fleet read <= {GOAL_RATIO}x the slowest single host's own read", "ratio": ratio,
            "pass": ratio <= GOAL_RATIO, "ratio_to_all_at_once": fleet.median / together.median,
            "alone_ratio": alone.median / first.median}  # fmt: skip
    shown = [result["fleet_label"], ALL_LOCAL, result["slowest_label"], result["first_label"], result["alone_label"]]
    rows = [[label, timings[label].median, timings[label].cpu_median, len(timings[label].wall)]
            for label in dict.fromkeys(shown)]  # fmt: skip
    lines = [
        "",
        f"portscope list --json: {args.hosts} hosts over ssh ({args.engines} with a sandboxed dockerd, "
        f"{args.ports} published ports each) against the hosts' own reads (medians, seconds)",
        "",
        render_table(["command", "wall", "cpu", "runs"], rows),
        "",
        "Every host's own read (medians): "
        + ", ".join(f"{a} {timings[label].median:.3f}" for a, label in result["own_labels"].items()),
        "",
        f"fleet / slowest single host ({result['slowest']}) = {fleet.median:.3f} / {slowest.median:.3f} = "
        f"{ratio:.2f}x (goal <= {GOAL_RATIO}x): {'PASS' if goal['pass'] else 'FAIL'}",
        f"fleet / every host's own read at once on these {os.cpu_count()} CPUs = {fleet.median:.3f} / "
        f"{together.median:.3f} = {goal['ratio_to_all_at_once']:.2f}x (the same work on the same CPUs, without ssh)",
        f"one host alone over ssh / its own read = {alone.median:.3f} / {first.median:.3f} = "
        f"{goal['alone_ratio']:.2f}x",
        "cpu: this process's children only (the client side; the hosts' sshd sessions and collectors are not in it)",
        "The hosts share this machine's CPUs: the fleet read does all the hosts' work at once, which real hosts "
        "would each do on their own CPUs.",
    ]
    if result["tui"] is not None:
        lines += tui_report(result["tui"], fleet.median, args)
    return "\n".join(lines), goal


def tui_report(tui: dict[str, Any], fleet_median: float, args: argparse.Namespace) -> list[str]:
    """The fleet TUI's part of the report: arrivals on screen, and key latencies during the read and idle."""
    ms = 1000
    rows = []
    for label, summary in (("while the hosts arrive", tui["during"]), ("idle, after the read", tui["idle"])):
        handled, shown = summary["handled"], summary["shown"]
        rows.append([label, summary["keys"], round(handled["median_s"] * ms), round(handled["worst_s"] * ms),
                     round(shown["median_s"] * ms), round(shown["worst_s"] * ms)])  # fmt: skip
    return [
        "",
        f"The fleet TUI (FleetApp headless in the client namespace, as `portscope --host h1 ... --host h{args.hosts}`"
        " wires it), one run, seconds from the start of its read:",
        f"  the hosts' reads ended (ssh, collection, parsing: a thread each) {tui['reads_ended_s'][0]:.2f} to "
        f"{tui['reads_ended_s'][1]:.2f} s; their models built and applied (one worker, host after host) "
        f"{tui['applied_s'][0]:.2f} to {tui['applied_s'][1]:.2f} s",
        f"  on screen: the first host {tui['first_shown_s']:.2f} s, all {args.hosts} hosts {tui['all_shown_s']:.2f} s "
        f"(the fleet's list --json: {fleet_median:.2f} s, median)",
        "",
        f"View switches (7, 1, 7, ... one every {tui['pace_s']} s), ms from the key event to the switch running "
        "(key -> run) and to the screen showing it (key -> shown):",
        "",
        render_table(["keys sent", "keys", "run median", "run worst", "shown median", "shown worst"], rows),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_read", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS_DIR / "fleet_read.json"), help="JSON results file")
    parser.add_argument("--hosts", type=int, default=20, help="namespace hosts with sshd (at most 240)")
    parser.add_argument("--engines", type=int, default=3, help="how many of them run a sandboxed dockerd")
    parser.add_argument("--ports", type=int, default=1000, help="Docker-shaped published ports loaded on each host")
    parser.add_argument("--timeout", type=float, default=120, help="the fleet read's --timeout per host")
    parser.add_argument("--runs", type=int, default=7, help="timed rounds (after one warm-up)")
    parser.add_argument("--budget", type=float, default=180.0,
                        help="seconds after which no new round starts (at least 3 rounds)")  # fmt: skip
    parser.add_argument("--no-tui", dest="tui", action="store_false", help="skip the fleet TUI's part")
    parser.add_argument("--pace", type=float, default=0.25, help="seconds between two keys sent to the fleet TUI")
    args = parser.parse_args(argv)
    if not 1 <= args.engines <= args.hosts:
        parser.error("--engines must be between 1 and --hosts")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problems = missing_prerequisites([*engine_sandbox.TOOLS, *ssh_hosts.TOOLS, "nft"])
    if problems:
        print("fleet_read: " + "; ".join(problems), file=sys.stderr)
        return 2
    started = time.perf_counter()
    machine = machine_info()
    try:
        result, timings = run(args)
    except BenchError as exc:
        print(f"fleet_read: {exc}", file=sys.stderr)
        return 1
    text, goal = report(result, timings, args)
    print(text)
    doc = {
        "benchmark": "fleet_read",
        "machine": {**machine, "loadavg_end": os.getloadavg()},
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        **result,
        "goal": goal,
        "elapsed_s": time.perf_counter() - started,
    }
    path = write_json(args.out, doc)
    load = f"{machine['loadavg'][0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print(f"\nresults: {path} (elapsed {doc['elapsed_s']:.0f} s; 1-minute load average {load})")
    return 0 if goal["pass"] else 3


if __name__ == "__main__":
    sys.exit(main())
