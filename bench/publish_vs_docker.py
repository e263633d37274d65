"""Time from command to traffic: `portscope publish`/`unpublish` against `docker run -d -p`/`docker rm -f`.

For each set-up (`--setups`: the Docker set-ups of tests/sandbox, and `nftables`) and each rule count
(`--rules`: Docker-shaped published ports loaded beside the real ones, bench/common.py), and each round:
- `portscope publish pbw PORT:80` on a running busybox httpd without `-p`, then `portscope unpublish`;
- `docker run -d -p PORT:80 ...` of a new busybox httpd on the same port, then `docker rm -f` of it.
`nftables`: Docker 20.10 has no nftables backend, so portscope publishes a plain IP (the busybox httpd of
tests/sandbox/nft_host.py) next to a Docker-29-shaped `docker-bridges` table, and the Docker rows of that
line are Docker's on iptables-nft with the same rule count, from the same run.
A poller in the client namespace connects to the host's address on PORT in a loop (bounded) and
stamps the moment the port answers (or stops answering). Start and stamp come from the same
CLOCK_MONOTONIC, so a row's time is "command started" to "traffic flows / is gone", including
the command's own run time (shown apart). Nothing leaves the namespaces. After the rounds of each set-up and
rule count, each stage of a publish is timed once in-process in the namespace (read, conflict check on the
port, the same check on the whole host for comparison, the rules previewed from a fresh dump), beside what no
publish can go below: Python's start with the modules it imports, and the rule tools its read runs, alone.

    python -m bench.publish_vs_docker [--rounds 5] [--setups nft-proxy,legacy-proxy,nftables] [--rules 0 10000]
"""

from __future__ import annotations

import argparse
import json
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

from bench.common import baseline_of, fill, iptables_skeleton, load_nft, nft_ruleset, with_bytecode  # noqa: E402
from tests.sandbox import nft_host  # noqa: E402
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
from tests.sandbox.netns import NetNs  # noqa: E402

PORT = 30500  # above the synthetic ports (bench/common.py: 10000-29999), below the ephemeral range
NATIVE = "nftables"
BACKEND_OF = {"nft": "iptables-nft", "legacy": "iptables-legacy"}
OPERATIONS = ("portscope publish", "portscope unpublish", "docker run -p", "docker rm -f")
#: Let Docker 29's forward drop pass marked packets (its `bridge-accept-fwmark`), as portscope requires.
FWMARK_RULE = (
    "insert rule ip docker-bridges filter-forward-in__docker0 "
    'meta mark & 0x10000000 == 0x10000000 accept comment "ALLOW FW MARK"\n'
)
WEB_CMD = "echo bench > /www/index.html && exec httpd -f -p 80 -h /www"
#: Runs in the client namespace: prints "ready", then the monotonic time at which host:port answers with the
#: marker (want=up) or stops answering (want=down); "timeout" after `limit` seconds.
POLLER = r"""
import socket, sys, time
host, port, want, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
marker = sys.argv[5].encode()
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
    return marker in data
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


@dataclass(frozen=True)
class Place:
    """Commands run in `ns`; the poller runs in `client` and connects to `address`:PORT, expecting `marker`."""

    ns: NetNs
    client: NetNs
    address: str
    marker: str = "bench"


def timed(place: Place, argv: Sequence[str], env: dict[str, str], want: str) -> tuple[float, float]:
    """(command start -> traffic state `want`, command run time); raises if the state never comes."""
    poller = subprocess.Popen(
        place.client.argv([sys.executable, "-c", POLLER, place.address, str(PORT), want, "30", place.marker]),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert poller.stdout is not None
    if poller.stdout.readline().strip() != "ready":
        raise RuntimeError("the poller did not start")
    start = time.monotonic()
    proc = subprocess.run(place.ns.argv(list(argv)), env=env, cwd=REPO_ROOT, capture_output=True, text=True)
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
    """Time each (name, argv, want) step into `samples` on a sandboxed engine (see `run_steps`)."""
    return run_steps(Place(engine.ns, client.ns, client.engine_ip), env, steps, samples, label)


def run_steps(
    place: Place,
    env: dict[str, str],
    steps: Sequence[tuple[str, Sequence[str], str]],
    samples: dict[str, Sample],
    label: str,
) -> bool:
    """Time each (name, argv, want) step into `samples`; False (after noting it) when one fails."""
    for name, argv, want in steps:
        try:
            to_traffic, command = timed(place, argv, env, want)
        except RuntimeError as exc:
            print(f"{label}: {exc}", file=sys.stderr)
            samples[name].failures += 1
            return False
        samples[name].to_traffic.append(to_traffic)
        samples[name].command.append(command)
    return True


#: What `portscope publish` imports before it reads (the docker SDK in the read's thread).
IMPORTS = "import portscope.cli.main, portscope.core.publish.ops, docker"
#: Runs in the namespace, as root: each stage of `publish TARGET PORT:80` once, in-process (seconds, as JSON).
STAGES = r"""
import json, sys, time
from portscope.core.publish import ops, state
from portscope.core.publish.conflicts import verdict
from portscope.core.publish.focus import check_port
from portscope.core.publish.world import read_world
from portscope.core.rules.nft_statements import TABLE_FAMILIES
from portscope.core.tools import run_all, which

target, spec, backend = sys.argv[1], sys.argv[2], sys.argv[3]
request = ops.parse_publish(target, spec)
out = {}
with state.locked() as folder:
    current = state.load(folder)
    start = time.perf_counter()
    world = read_world(None, backend, current)
    out["read (backend, rules, sockets, engine)"] = time.perf_counter() - start
    commands = []
    for s in world.snap.sources:
        if not s.origin.startswith("/"):
            continue
        if s.format == "nft-text" and "(every chain)" in s.origin:  # a native table listed chain by chain
            nft, _list, _chain, family, name = s.origin.split()[:5]
            table = next(t for t in world.snap.tables if (t.family, t.name) == (TABLE_FAMILIES[family], name))
            commands += [[nft, "list", "chain", family, name, chain] for chain in table.chains]
        else:
            commands.append(s.origin.split())
    start = time.perf_counter()
    run_all([[which("nft"), "list", "chains"]])  # the read's first stage, then its tools at once
    run_all(commands)
    out["(its rule tools alone)"] = time.perf_counter() - start
    start = time.perf_counter()
    check_port(world.snap, "0.0.0.0", request.spec.host_port, request.spec.protocol, current.bindings)
    out["conflict check on the port (focus: other ports' lines are not parsed)"] = time.perf_counter() - start
    start = time.perf_counter()
    planned = ops.plan(request, world, current)
    ops.preview(planned, world)
    out["plan + preview (the check again, the rules to write)"] = time.perf_counter() - start
    start = time.perf_counter()
    rules = sum(len(c.rules) for t in world.snap.tables for c in t.chains.values())
    out["(parsing every rule, which publish does not)"] = time.perf_counter() - start
    start = time.perf_counter()
    verdict(world.snap, "0.0.0.0", request.spec.host_port, request.spec.protocol, current.bindings)
    out["(the same check on the whole host: resolve, diagnose)"] = time.perf_counter() - start
print(json.dumps({"rules": rules, "stages": out}))
"""


def stages(place: Place, env: dict[str, str], target: str, backend: str) -> dict[str, float]:
    """Each stage of a publish, timed once in-process in the namespace (nothing is written); and, before them,
    Python's start with the modules `publish` imports (the docker SDK's among them), the median of three runs."""
    runs = []
    for _ in range(3):  # the median of three
        start = time.monotonic()
        argv = place.ns.argv([sys.executable, "-c", IMPORTS])  # output captured: `run` then waits without polling
        subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, check=True, timeout=60)
        runs.append(time.monotonic() - start)
    started = statistics.median(runs)
    argv = place.ns.argv([sys.executable, "-c", STAGES, target, f"{PORT}:80", backend])
    proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        print(f"stages: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return {}
    return {"python start + imports": started, **json.loads(proc.stdout)["stages"]}


def load_rules(ns: NetNs, setup_id: str, n: int, baseline: dict[int, str] | None) -> None:
    """Docker-shaped published ports (and the engine's own rules, `baseline`) into `ns`, replacing earlier ones."""
    if setup_id == NATIVE:
        ns.run(["nft", "delete", "table", "ip", "docker-bridges"], check=False)
        load_nft(ns, nft_ruleset(n) + FWMARK_RULE)
        return
    backend = BACKEND_OF[setup_id.split("-")[0]]
    fill(ns, backend, n, baseline or {4: iptables_skeleton()})


Results = dict[str, dict[str, Sample]]
Stages = dict[str, dict[str, float]]


def bench_setup(setup_id: str, rounds: int, sizes: Sequence[int] = (0,)) -> tuple[Results, Stages]:
    """Every rule count on one set-up: its samples and stage times, keyed "SET-UP, N rules"."""
    if setup_id == NATIVE:
        return bench_native(rounds, sizes)
    setup = next(s for s in SETUPS if s.id == setup_id)
    engine = start_engine(setup)
    client = None
    results: Results = {}
    timings: Stages = {}
    try:
        ensure_image(engine)
        client = start_client(engine.ns, name=client_ns_name(engine.ns.name))
        engine.run_container("pbw", IMAGE, "sh", "-c", WEB_CMD)
        ip = engine.inspect("pbw")[0]["NetworkSettings"]["IPAddress"]
        if not wait_for(lambda: client_ok(engine, ip), timeout=30):
            raise RuntimeError("the bench container never served")
        baseline = baseline_of(engine)
        env = with_bytecode(engine.env())
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["PORTSCOPE_STATE_DIR"] = tempfile.mkdtemp(prefix="psbench-")
        place = Place(engine.ns, client.ns, client.engine_ip)
        for n in sizes:
            if n:
                load_rules(engine.ns, setup_id, n, baseline)
            label = f"{setup_id}, {n} rules"
            results[label] = rounds_on(place, env, "pbw", rounds, label, docker=True)
            timings[label] = stages(place, env, "pbw", "auto")
    finally:
        if client is not None:
            stop_client(client)
        stop_engine(engine)
    return results, timings


def bench_native(rounds: int, sizes: Sequence[int]) -> tuple[Results, Stages]:
    """Native nftables: portscope publishes to the nft host's target next to a Docker-29-shaped table."""
    env_ns = nft_host.start()
    results: Results = {}
    timings: Stages = {}
    try:
        env = with_bytecode(env_ns.env())
        place = Place(env_ns.host, env_ns.client, nft_host.CLIENT_SIDE_IP, marker=nft_host.PAGE)
        for n in sizes:
            load_rules(env_ns.host, NATIVE, n, None)
            label = f"{NATIVE}, {n} rules"
            results[label] = rounds_on(place, env, nft_host.TARGET_IP, rounds, label, docker=False)
            timings[label] = stages(place, env, nft_host.TARGET_IP, NATIVE)
    finally:
        nft_host.stop(env_ns)
    return results, timings


def rounds_on(place: Place, env: dict[str, str], target: str, rounds: int, label: str, docker: bool) -> dict:
    """`rounds` rounds of publish/unpublish (and, with `docker`, docker run -p / docker rm -f) on PORT."""
    samples = {name: Sample() for name in OPERATIONS}
    cli = [sys.executable, "-m", "portscope"]
    docker_cli = ["/usr/bin/docker"]
    web = [IMAGE, "sh", "-c", WEB_CMD]
    warm_up = place.ns.argv([*cli, "publish", "--dry-run", target, f"{PORT}:80"])  # writes every module's .pyc
    subprocess.run(warm_up, env=env, cwd=REPO_ROOT, capture_output=True, timeout=300, check=False)
    for i in range(rounds):
        steps = [
            ("portscope publish", [*cli, "publish", target, f"{PORT}:80"], "up"),
            ("portscope unpublish", [*cli, "unpublish", f"{PORT}/tcp"], "down"),
        ]
        if docker:
            steps += [
                ("docker run -p", [*docker_cli, "run", "-d", "--name", f"pbd{i}", "-p", f"{PORT}:80", *web], "up"),
                ("docker rm -f", [*docker_cli, "rm", "-f", f"pbd{i}"], "down"),
            ]
        if not run_steps(place, env, steps, samples, f"{label} round {i}"):
            if docker:
                subprocess.run(place.ns.argv([*docker_cli, "rm", "-f", f"pbd{i}"]), env=env, capture_output=True)
            unpublish = place.ns.argv([*cli, "unpublish", f"{PORT}/tcp"])
            subprocess.run(unpublish, env=env, cwd=REPO_ROOT, capture_output=True)
        print(f"{label}: round {i + 1}/{rounds} done", file=sys.stderr)
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


def with_docker_reference(results: Results) -> Results:
    """The nftables lines get Docker's rows from iptables-nft (nft-proxy, else any iptables-nft set-up) at the
    same rule count, from this run."""
    out: Results = {}
    for label, samples in results.items():
        if label.startswith(f"{NATIVE},"):
            n = label.split(", ")[1]
            refs = [r for key, r in results.items() if key.startswith("nft-") and key.endswith(f", {n}")]
            if refs:
                samples = {**samples, **{f"{name} (iptables-nft)": refs[0][name] for name in OPERATIONS[2:]}}
                samples = {k: v for k, v in samples.items() if k not in OPERATIONS[2:]}
        out[label] = samples
    return out


GOAL_S = 0.3  # publish and unpublish, command to traffic, and no slower than `docker run -d -p` to traffic


def goal_lines(results: Results) -> list[str]:
    """Per set-up and rule count: publish and unpublish medians against GOAL_S and Docker's `run -d -p`."""
    out = []
    for label, samples in results.items():
        docker = next((s for name, s in samples.items() if name.startswith("docker run -p") and s.to_traffic), None)
        if docker is None:
            continue
        limit = min(GOAL_S, statistics.median(docker.to_traffic))
        for name in OPERATIONS[:2]:
            if samples[name].to_traffic:
                got = statistics.median(samples[name].to_traffic)
                verdict = "met" if got <= limit else "not met"
                out.append(f"{label}: {name} {got:.2f} s, goal <= {limit:.2f} s: {verdict}")
    return out


def stage_table(timings: Stages) -> str:
    """Each stage of one in-process publish (ms) per set-up and rule count."""
    names = list(dict.fromkeys(name for t in timings.values() for name in t))
    headers = ("set-up", *names)
    rows = [(label, *(f"{t[name] * 1000:.0f}" if name in t else "-" for name in names)) for label, t in timings.items()]
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(tuple("-" * w for w in widths)), *map(line, rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per set-up and rule count (default 5)")
    parser.add_argument(
        "--setups", default=f"nft-proxy,legacy-proxy,{NATIVE}", help="comma-separated set-up ids (and `nftables`)"
    )
    parser.add_argument(
        "--rules", type=int, nargs="+", default=[0], metavar="N", help="Docker-shaped ports loaded (default 0)"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: the benchmark starts dockerd in network namespaces", file=sys.stderr)
        return 4
    load = os.getloadavg()
    results: Results = {}
    timings: Stages = {}
    for setup_id in args.setups.split(","):
        got, stage_times = bench_setup(setup_id, args.rounds, sorted(args.rules))
        results.update(got)
        timings.update(stage_times)
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(table(with_docker_reference(results)))
    print()
    print(f"goal: <= {GOAL_S} s and no slower than docker run -d -p (both to traffic, medians):")
    print("\n".join(goal_lines(with_docker_reference(results))))
    print()
    print("one publish in-process, per stage (ms):")
    print(stage_table(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
