"""Shared helpers for the benchmarks: Docker-shaped rule sets, namespaces, a sandboxed engine, timing, tables.

Everything runs inside network namespaces created here (or by tests/sandbox) and deleted afterwards;
the root namespace's firewall is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.sandbox.engine import Engine, Setup, ensure_image, start_engine, stop_engine
from tests.sandbox.netns import NetNs

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
#: A DOCKER_HOST whose socket does not exist: portscope's "no Docker" case.
MISSING_DOCKER_HOST = "unix:///nonexistent/portscope-bench/docker.sock"
DOCKER_CLIENT = "/usr/bin/docker"  # the Debian client, as in tests/sandbox/engine.py
BACKENDS = ("iptables-nft", "iptables-legacy", "nftables")
ENGINE_BACKEND = {"iptables-nft": "nft", "iptables-legacy": "legacy"}
BRIDGE = "docker0"
FIRST_PORT = 10000  # synthetic host ports FIRST_PORT.. stay below the ephemeral range (32768)
MAX_PORTS = 20000
#: The few real containers started on each sandboxed engine, for realism: name -> `docker run` arguments.
CONTAINERS: dict[str, tuple[str, ...]] = {
    "bench-web": ("-p", "8080:80", "{image}", "httpd", "-f", "-p", "80"),
    "bench-local": ("-p", "127.0.0.1:9000:80", "{image}", "httpd", "-f", "-p", "80"),
    "bench-dns": ("-p", "5353:53/udp", "{image}", "sleep", "86400"),
    "bench-none": ("{image}", "sleep", "86400"),
}


class BenchError(RuntimeError):
    """A command the benchmark depends on failed, or its output is not what was set up."""


# --------------------------------------------------------------------------- Docker-shaped rules


def synthetic_port(i: int) -> int:
    """Host port of the i-th synthetic published port."""
    return FIRST_PORT + i


def synthetic_ip(i: int) -> str:
    """Container address of the i-th synthetic port: 172.17.1.2 onwards (172.17.0.x is left to real containers)."""
    return f"172.17.{1 + i // 250}.{2 + i % 250}"


def iptables_skeleton() -> str:
    """Docker 20.10's chains and jumps (nat and filter) without any published port, as iptables-restore input."""
    return "\n".join(
        [
            "*nat",
            ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
            ":DOCKER - [0:0]",
            "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
            "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
            f"-A POSTROUTING -s 172.17.0.0/16 ! -o {BRIDGE} -j MASQUERADE",
            f"-A DOCKER -i {BRIDGE} -j RETURN",
            "COMMIT",
            "*filter",
            ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":DOCKER - [0:0]", ":DOCKER-USER - [0:0]",
            "-A FORWARD -j DOCKER-USER",
            f"-A FORWARD -o {BRIDGE} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A FORWARD -o {BRIDGE} -j DOCKER",
            f"-A FORWARD -i {BRIDGE} ! -o {BRIDGE} -j ACCEPT",
            "-A DOCKER-USER -j RETURN",
            "COMMIT",
            "",
        ]
    )  # fmt: skip


def iptables_ports(n: int) -> str:
    """`n` published ports as Docker writes them, for `iptables-restore --noflush` onto existing DOCKER chains.

    Per port: the DNAT in nat DOCKER, the hairpin MASQUERADE in POSTROUTING and the ACCEPT in filter DOCKER.
    No chain is declared (a declaration would flush an existing chain under --noflush).
    """
    _check_count(n)
    nat, filt = ["*nat"], ["*filter"]
    for i in range(n):
        ip, port = synthetic_ip(i), synthetic_port(i)
        nat.append(f"-A POSTROUTING -s {ip}/32 -d {ip}/32 -p tcp -m tcp --dport 80 -j MASQUERADE")
        nat.append(f"-A DOCKER ! -i {BRIDGE} -p tcp -m tcp --dport {port} -j DNAT --to-destination {ip}:80")
        filt.append(f"-A DOCKER -d {ip}/32 ! -i {BRIDGE} -o {BRIDGE} -p tcp -m tcp --dport 80 -j ACCEPT")
    return "\n".join([*nat, "COMMIT", *filt, "COMMIT", ""])


def nft_ruleset(n: int) -> str:
    """`n` published ports in a `table ip docker-bridges` laid out like Docker 29's nftables backend, for `nft -f`."""
    _check_count(n)
    dnat, hairpin, accept = [], [], []
    for i in range(n):
        ip, port = synthetic_ip(i), synthetic_port(i)
        dnat.append(f'\t\tiifname != "{BRIDGE}" tcp dport {port} counter dnat to {ip}:80 comment "DNAT"')
        hairpin.append(f'\t\tip saddr {ip} ip daddr {ip} tcp dport 80 counter masquerade comment "HAIRPIN"')
        accept.append(f"\t\tip daddr {ip} tcp dport 80 counter accept")
    return "\n".join(
        [
            "table ip docker-bridges {",
            "\tchain nat-prerouting-and-output {", *dnat, "\t}",
            "\tchain nat-PREROUTING {",
            "\t\ttype nat hook prerouting priority dstnat; policy accept;",
            "\t\tfib daddr type local counter jump nat-prerouting-and-output",
            "\t}",
            "\tchain nat-OUTPUT {",
            "\t\ttype nat hook output priority -100; policy accept;",
            "\t\tip daddr != 127.0.0.0/8 fib daddr type local counter jump nat-prerouting-and-output",
            "\t}",
            "\tchain nat-POSTROUTING {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\toifname != "{BRIDGE}" ip saddr 172.17.0.0/16 counter masquerade comment "MASQUERADE"',
            *hairpin,
            "\t}",
            f"\tchain filter-forward-in__{BRIDGE} {{",
            "\t\tct state established,related counter accept", *accept,
            '\t\tcounter drop comment "UNPUBLISHED PORT DROP"',
            "\t}",
            "\tchain filter-FORWARD {",
            "\t\ttype filter hook forward priority filter; policy accept;",
            f'\t\toifname "{BRIDGE}" jump filter-forward-in__{BRIDGE}',
            "\t}",
            "}",
            "",
        ]
    )  # fmt: skip


def _check_count(n: int) -> None:
    if not 0 <= n <= MAX_PORTS:
        raise ValueError(f"between 0 and {MAX_PORTS} synthetic ports, not {n}")


# --------------------------------------------------------------------------- filling a namespace


def restore_tool(backend: str, family: int = 4) -> str:
    """`iptables-nft-restore`, `ip6tables-legacy-restore`, ..."""
    base = "iptables" if family == 4 else "ip6tables"
    return f"{base}-{backend.removeprefix('iptables-')}-restore"


def save_tool(backend: str, family: int = 4) -> str:
    """`iptables-nft-save`, `ip6tables-legacy-save`, ..."""
    return restore_tool(backend, family).removesuffix("-restore") + "-save"


def restore(ns: NetNs, backend: str, text: str, *, family: int = 4, noflush: bool = False) -> None:
    """Load iptables-restore input in bulk into `ns` with the backend's restore tool."""
    argv = [restore_tool(backend, family), *(["--noflush"] if noflush else [])]
    _run_checked(ns, argv, text)


def load_nft(ns: NetNs, text: str) -> None:
    """Load an nft script in bulk into `ns` (`nft -f -`)."""
    _run_checked(ns, ["nft", "-f", "-"], text)


def _run_checked(ns: NetNs, argv: list[str], text: str) -> None:
    proc = ns.run(argv, check=False, input=text, timeout=600)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed in {ns.name}: {proc.stderr.strip()[-2000:]}")


def fill(ns: NetNs, backend: str, n: int, baseline: Mapping[int, str] | None = None) -> float:
    """Load `n` Docker-shaped published ports into `ns`; returns the seconds it took.

    iptables flavours: the engine's own rules (`baseline`, per family) or Docker's bare skeleton first,
    then the ports appended with --noflush. Native nftables: one `nft -f` of `nft_ruleset(n)`.
    """
    start = time.perf_counter()
    if backend == "nftables":
        load_nft(ns, nft_ruleset(n))
    else:
        for family, text in (baseline or {4: iptables_skeleton()}).items():
            if text.strip():
                restore(ns, backend, text, family=family)
        if n:
            restore(ns, backend, iptables_ports(n), noflush=True)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- sandboxed engine


def start_docker(backend: str) -> Engine:
    """A sandboxed dockerd of the backend's iptables flavour running the `CONTAINERS`; the caller stops it."""
    engine = start_engine(Setup(ENGINE_BACKEND[backend], userland_proxy=True))  # type: ignore[arg-type]
    try:
        image = ensure_image(engine)
        for name, args in CONTAINERS.items():
            engine.run_container(name, *(a.format(image=image) for a in args))
    except BaseException:
        stop_engine(engine)
        raise
    return engine


def baseline_of(engine: Engine) -> dict[int, str]:
    """The engine's own rules, per family, as its iptables flavour saves them."""
    return {family: engine.iptables_save(family) for family in (4, 6)}


def docker_env(engine: Engine | None) -> dict[str, str]:
    """Environment for the Debian docker client: the engine's DOCKER_HOST, else the missing socket."""
    if engine is not None:
        return engine.env()
    env = _base_env()
    env["DOCKER_HOST"] = MISSING_DOCKER_HOST
    return env


def _base_env() -> dict[str, str]:
    """The caller's environment without Docker/portscope settings, and with bytecode caching on (`with_bytecode`)."""
    drop = ("DOCKER_", "PORTSCOPE_")
    return with_bytecode({k: v for k, v in os.environ.items() if not k.startswith(drop)})


def with_bytecode(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with bytecode caching on: a user's portscope runs from cached .pyc files (the warm-up run writes them),
    so PYTHONDONTWRITEBYTECODE is dropped rather than timing a recompile of every module on every run."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


# --------------------------------------------------------------------------- commands and timing


@dataclass(frozen=True)
class Cmd:
    """One command to time: what it is called in tables, its argv (already wrapped in nsenter) and env."""

    label: str
    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    ok_codes: tuple[int, ...] = (0,)
    cwd: str | None = None  # where it runs; None: this repository's root


@dataclass
class Timing:
    """Wall-clock and CPU seconds (user+sys, children included) of each timed run."""

    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def to_json(self) -> dict[str, Any]:
        return {"median_s": self.median, "cpu_median_s": self.cpu_median, "runs_s": self.wall, "cpu_s": self.cpu}


def portscope_env(docker_host: str) -> dict[str, str]:
    """Environment for `python -m portscope` from the repository root, talking to `docker_host`."""
    env = _base_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["DOCKER_HOST"] = docker_host
    return env


def portscope_cmd(ns: NetNs, label: str, command: str, docker_host: str, checkout: str | None = None) -> Cmd:
    """`python -m portscope COMMAND --json` inside `ns` (conflicts exits 1 when it finds errors: that is success).

    `checkout`: run that checkout of portscope instead of this one (`--baseline`), with the same interpreter.
    """
    argv = ns.argv([sys.executable, "-m", "portscope", command, "--json"])
    ok = (0, 1) if command == "conflicts" else (0,)
    return Cmd(label, tuple(argv), portscope_env(docker_host), ok_codes=ok, cwd=checkout)


def tool_cmd(ns: NetNs, argv: Sequence[str], env: Mapping[str, str] | None = None, label: str | None = None) -> Cmd:
    """A plain tool run inside `ns`, labelled by its command line."""
    return Cmd(label or " ".join(argv), tuple(ns.argv(argv)), env)


def run_once(cmd: Cmd, *, capture: bool = False, timeout: float = 600) -> tuple[float, float, str]:
    """Run `cmd` from the repository root; (wall s, CPU s, stdout if `capture`). Raises BenchError on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd.argv,
        env=cmd.env,
        cwd=cmd.cwd or REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in cmd.ok_codes:
        raise BenchError(f"{cmd.label} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout if capture else ""


def add_timing_options(parser: argparse.ArgumentParser) -> None:
    """--runs, --budget and --no-breakdown, as every timing script here takes them."""
    parser.add_argument("--runs", type=int, default=7, help="timed rounds per size (after one warm-up)")
    parser.add_argument("--budget", type=float, default=40.0,
                        help="seconds per size after which no new round starts (at least 3 rounds)")  # fmt: skip
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false", help="skip the stage breakdown")


def measure(
    cmds: Sequence[Cmd], *, runs: int, budget: float, min_runs: int = 3
) -> tuple[dict[str, Timing], dict[str, str]]:
    """Warm up each command once (its output is returned for checks), then time up to `runs` rounds.

    Rounds interleave the commands, so load from elsewhere hits them alike. After `min_runs` rounds,
    no new round starts once `budget` seconds have gone by.
    """
    outputs = {c.label: run_once(c, capture=True)[2] for c in cmds}
    timings = {c.label: Timing(c.label) for c in cmds}
    start = time.perf_counter()
    for done in range(runs):
        if done >= min_runs and time.perf_counter() - start > budget:
            break
        for cmd in cmds:
            wall, cpu, _ = run_once(cmd)
            timings[cmd.label].wall.append(wall)
            timings[cmd.label].cpu.append(cpu)
    return timings, outputs


def time_python(ns: NetNs, code: str, runs: int, flags: Sequence[str] = ()) -> float:
    """Median wall seconds of `python FLAGS -c CODE` inside `ns` (portscope's environment), after a warm-up."""
    argv = ns.argv([sys.executable, *flags, "-c", code])
    cmd = Cmd(f"python {' '.join(flags)} -c {code!r}", tuple(argv), portscope_env(MISSING_DOCKER_HOST))
    timings, _ = measure([cmd], runs=runs, budget=30)
    return timings[cmd.label].median


def run_probe(ns: NetNs, mode: str, docker_host: str) -> dict[str, Any]:
    """Run `python -m bench.probe MODE` inside `ns`: one in-process timing of each stage (see bench/probe.py)."""
    argv = ns.argv([sys.executable, "-m", "bench.probe", mode])
    proc = subprocess.run(
        argv, env=portscope_env(docker_host), cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"bench.probe {mode} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def count_bindings(list_json: str, n: int) -> tuple[int, int]:
    """(bindings in a `list --json` document, how many of them are the `n` synthetic ports)."""
    bindings = json.loads(list_json)["bindings"]
    wanted = range(synthetic_port(0), synthetic_port(n))
    return len(bindings), sum(1 for b in bindings if b["host_port"] in wanted and b["protocol"] == "tcp")


# --------------------------------------------------------------------------- prerequisites and output


def missing_prerequisites(tools: Sequence[str]) -> list[str]:
    """What stops the benchmark from running here: not root, or tools not installed."""
    problems = [] if os.geteuid() == 0 else ["not root (it creates network namespaces)"]
    missing = [t for t in tools if not (os.access(t, os.X_OK) if os.path.isabs(t) else shutil.which(t))]
    if missing:
        problems.append("missing " + ", ".join(missing) + " (scripts/test installs them)")
    return problems


def stage_labels(breakdowns: Sequence[Mapping[str, Any]]) -> list[str]:
    """Stage labels of bench/probe.py outputs in run order, each rule command ("  cmd: ...") after read_rules()."""
    labels = list(dict.fromkeys(key for bd in breakdowns for key in bd["stages"]))
    commands = list(dict.fromkeys(f"  cmd: {key}" for bd in breakdowns for key in bd["commands"]))
    at = labels.index("read_rules()") + 1 if "read_rules()" in labels else len(labels)
    return labels[:at] + commands + labels[at:]


def stage_value(bd: Mapping[str, Any], label: str) -> float | None:
    """A stage's or a rule command's seconds in one probe output (see `stage_labels`)."""
    if label.startswith("  cmd: "):
        return bd["commands"].get(label.removeprefix("  cmd: "))
    return bd["stages"].get(label)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def ratio(a: float | None, b: float | None) -> str:
    """`a/b` as "4.2x", "-" when undefined."""
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.1f}x"


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write results as indented JSON, creating the folder; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    return out


def log(message: str) -> None:
    """Progress on stderr (tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: cores, load, Python, kernel."""
    return {
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
    }
