"""From a change on the host to the TUI showing it: a rule, a container, a listener.

For each backend and N (`--sizes`, default 0 and 10,000 Docker-shaped ports), the TUI of this checkout
(change notifications) and, with `--baseline CHECKOUT`, another checkout's (e.g. one that re-reads on a
timer) run headless at once in the same namespace (bench/live_driver.py). Each round makes a change and
stamps, on the same CLOCK_MONOTONIC, when each app's model first has (or no longer has) a row showing it:
- rule: a DNAT for port 31001 inserted at the top of Docker's chain (`iptables -I` of the backend's flavour,
  or `nft insert rule` in native nftables), then deleted;
- container: `docker run -d -p 31002:80` of a busybox httpd (the time `docker run` itself takes is shown
  beside), then `docker rm -f`;
- listener: `busybox nc -l -p 31003` started, then killed.
Each change comes after `--gap` seconds of quiet. Times are from the command's start (the command's own time
beside) and from its end, once the change is made. Goal: on screen within 1 s.

    python -m bench.change_latency [--baseline /tmp/base] [--backends iptables-nft] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BACKENDS,
    BRIDGE,
    REPO_ROOT,
    BenchError,
    log,
    machine_info,
    portscope_env,
    render_table,
    save_tool,
    start_docker,
    write_json,
)
from bench.tui_host import ENGINE_FOR, filled_host
from tests.sandbox.engine import IMAGE, Engine, stop_engine
from tests.sandbox.line_driver import LineDriver
from tests.sandbox.netns import NetNs

GOAL = 1.0  # seconds from the change to the screen


class Driven(LineDriver):
    """One app under bench/live_driver.py in `ns`, run from `checkout` (None: this one)."""

    def __init__(self, ns: NetNs, docker_host: str, checkout: str | None) -> None:
        checkout = checkout or str(REPO_ROOT)
        started = time.monotonic()
        super().__init__(  # by path: `portscope` then comes from PYTHONPATH, the checkout
            ns.argv([sys.executable, str(REPO_ROOT / "bench" / "live_driver.py")]), cwd=checkout,
            env={**portscope_env(docker_host), "PYTHONPATH": checkout},
        )  # fmt: skip
        if self.answer() != "ready":
            raise BenchError(f"the TUI in {checkout} did not start (exit {self.process.poll()})")
        self.first_paint = time.monotonic() - started  # start to the first model shown

    def expect(self, verb: str, text: str) -> None:
        if self.ask(f"{verb} {text}") != "ok":
            raise BenchError(f"the driver did not take `{verb} {text}`")

    def seen_at(self) -> float:
        return float(self.answer().split()[1])


@dataclass(frozen=True)
class Step:
    """A change to time (`act`), and what must be looked up before it, off the clock (`prepare`)."""

    act: Callable[[], object]
    prepare: Callable[[], object] = lambda: None


def rule_change(ns: NetNs, backend: str) -> tuple[Step, Step]:
    if backend == "nftables":
        chain = ["ip", "docker-bridges", "nat-prerouting-and-output"]
        add = ["nft", "insert", "rule", *chain, "tcp", "dport", "31001", "dnat", "to", "172.17.0.250:80"]
        handle: list[str] = []

        def find_handle() -> None:  # nft deletes by handle: the rule's is looked up before the clock starts
            listing = ns.run(["nft", "-a", "list", "chain", *chain]).stdout
            handle[:] = [next(line.rsplit(" ", 1)[1] for line in listing.splitlines() if "dport 31001" in line)]

        delete = Step(lambda: ns.run(["nft", "delete", "rule", *chain, "handle", handle[0]]), find_handle)
        return Step(lambda: ns.run(add)), delete
    tool = save_tool(backend).removesuffix("-save")
    rule = ["-p", "tcp", "--dport", "31001", "-j", "DNAT", "--to-destination", "172.17.0.250:80"]
    return Step(lambda: ns.run([tool, "-w", "-t", "nat", "-I", "DOCKER", "1", "!", "-i", BRIDGE, *rule])), Step(
        lambda: ns.run([tool, "-w", "-t", "nat", "-D", "DOCKER", "!", "-i", BRIDGE, *rule])
    )


def changes(ns: NetNs, backend: str, engine: Engine) -> list[tuple[str, str, Step, Step]]:
    """(what, the text that shows it, make, undo)."""
    listener: list[subprocess.Popen[bytes]] = []

    def listen() -> object:
        listener.append(subprocess.Popen(ns.argv(["busybox", "nc", "-l", "-p", "31003"]),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        return listener[-1]

    def unlisten() -> object:
        listener[-1].kill()
        return listener.pop().wait()

    run = ("docker", "run", "-d", "--name", "pslat", "-p", "31002:80", IMAGE, "httpd", "-f", "-p", "80")
    add, delete = rule_change(ns, backend)
    return [
        ("rule", "31001", add, delete),
        ("container", "31002", Step(lambda: engine.docker(*run[1:])), Step(lambda: engine.docker("rm", "-f", "pslat"))),
        ("listener", "31003", Step(listen), Step(unlisten)),
    ]


def measure(backend: str, n: int, engine: Engine, args: argparse.Namespace) -> list[list]:
    """Each change made and undone `--rounds` times; the median time until each app showed it."""
    rows = []
    with filled_host(backend, n, engine) as ns:
        apps = {"portscope": Driven(ns, engine.docker_host, None)}
        if args.baseline:
            apps["baseline"] = Driven(ns, engine.docker_host, args.baseline)
        try:
            for name, app in apps.items():
                rows.append([backend, n, "first paint", name, round(app.first_paint, 3), "-", "-"])
                log(f"{backend} N={n} first paint: {name} {app.first_paint:.2f} s")
            time.sleep(args.warmup)
            for what, text, make, undo in changes(ns, backend, engine):
                seen: dict[tuple[str, str], list[float]] = {}
                after: dict[tuple[str, str], list[float]] = {}  # from the command's end: the change is made
                command: dict[str, list[float]] = {"on": [], "off": []}
                for _ in range(args.rounds):
                    for step, verb, act in (("on", "appear", make), ("off", "vanish", undo)):
                        act.prepare()
                        time.sleep(args.gap)
                        for app in apps.values():
                            app.expect(verb, text)
                        started = time.monotonic()
                        act.act()
                        ended = time.monotonic()
                        command[step].append(ended - started)
                        for name, app in apps.items():
                            at = app.seen_at()
                            seen.setdefault((step, name), []).append(at - started)
                            after.setdefault((step, name), []).append(at - ended)
                for (step, name), times in seen.items():
                    rows.append([backend, n, f"{what} {step}", name, round(statistics.median(times), 3),
                                 round(statistics.median(command[step]), 3),
                                 round(statistics.median(after[(step, name)]), 3)])  # fmt: skip
                    log(f"{backend} N={n} {what} {step}: {name} {statistics.median(times):.2f} s")
        finally:
            for app in apps.values():
                app.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 10000], help="published ports per host")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per change (default 3)")
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="seconds after the first paint (default 20: an app that follows `nft monitor` must "
                             "have loaded the ruleset, or it misses the first change)")  # fmt: skip
    parser.add_argument(
        "--gap",
        type=float,
        default=1.0,
        help="seconds of quiet before each change (default 1: the app is done with the last)",
    )
    parser.add_argument("--baseline", help="another checkout to run beside this one, e.g. a worktree of main")
    parser.add_argument("--out", default="bench/results/change_latency.json")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    machine = machine_info()
    engines: dict[str, Engine] = {}
    rows: list[list] = []
    try:
        for flavour in sorted({ENGINE_FOR[b] for b in backends}):
            engines[flavour] = start_docker(flavour)
        for backend in backends:
            for n in args.sizes:
                rows += measure(backend, n, engines[ENGINE_FOR[backend]], args)
    finally:
        for engine in engines.values():
            stop_engine(engine)
    print(f"machine: {machine}")
    columns = ["backend", "N", "change", "app", "to screen s (median)", "the command s", "after the command s"]
    print(render_table(columns, rows))
    for column, since in ((4, "the command's start"), (6, "the command's end")):
        worst = max((r[column] for r in rows if r[3] == "portscope" and r[2] != "first paint"), default=0.0)
        verdict = "met" if worst <= GOAL else "NOT met"
        print(f"goal: on screen within {GOAL:g} s of {since}: {verdict} (worst {worst:.2f} s)")
    write_json(args.out, {"benchmark": "change_latency", "machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
