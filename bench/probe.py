"""Where `portscope list` / `conflicts` spend their time: each stage once, in-process, in a fresh interpreter.

Run inside the namespace under test, from the repository root (bench/common.py's `run_probe` does this):

    python -m bench.probe list|conflicts

Prints JSON: `stages` (seconds per stage, in the order the CLI runs them), `commands` (each rule
command that `read_rules()` runs, alone, plus `nft list tables`, which it avoids, for comparison) and `counts`.
Stages that run concurrently in `read_live()` are also timed alone, so they add up to more than it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
#: What `python -m portscope list --json` / `conflicts --json` import before they read anything.
MODULES = {
    "list": (
        "portscope.cli.launch",
        "portscope.cli.main",
        "portscope.cli.sources",
        "portscope.core.live",
        "portscope.core.inventory",
        "portscope.cli.filters",
        "portscope.cli.render_json",
    ),
    "conflicts": (
        "portscope.cli.launch",
        "portscope.cli.main",
        "portscope.cli.sources",
        "portscope.core.live",
        "portscope.core.inventory",
        "portscope.core.diagnose.run",
        "portscope.cli.render_json",
    ),
}


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def import_all(names: Sequence[str]) -> None:
    for name in names:
        importlib.import_module(name)


def rule_commands(sources: Sequence[Any], scope: str) -> dict[str, list[str]]:
    """The commands `read_rules(scope=scope)` ran (its first stage, then its sources' origins) plus the nft
    listings, by label."""
    from portscope.core.rules.rule_tools import first_stage_commands
    from portscope.core.tools import which

    commands = {_label(argv): list(argv) for argv in first_stage_commands(scope=scope)}
    commands.update({_label(s.origin.split()): s.origin.split() for s in sources})
    nft = which("nft")
    if nft:
        commands["nft list tables (not run: for comparison)"] = [nft, "list", "tables"]
    return commands


def _label(argv: Sequence[str]) -> str:
    return " ".join([os.path.basename(argv[0]), *argv[1:]])


def _engine_socket_exists() -> bool:
    """True when DOCKER_HOST is a Unix socket that exists (then read_containers imports the docker SDK)."""
    host = os.environ.get("DOCKER_HOST", "")
    return host.startswith("unix://") and os.path.exists(host.removeprefix("unix://"))


def time_commands(commands: dict[str, list[str]]) -> dict[str, float]:
    """Each command alone, output discarded."""
    out = {}
    for label, argv in commands.items():
        out[label], _ = timed(subprocess.run, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return out


def probe(mode: str) -> dict[str, Any]:
    """Time every stage of `portscope MODE --json` once."""
    stages: dict[str, float] = {}
    stages["imports"], _ = timed(import_all, MODULES[mode])
    from portscope.core.containers import read_containers
    from portscope.core.host import read_host_facts
    from portscope.core.inventory import build_inventory
    from portscope.core.join import join
    from portscope.core.live import read_live
    from portscope.core.resolve import resolve
    from portscope.core.rules.formats import parse_source
    from portscope.core.rules.live import read_rules
    from portscope.core.sockets import read_endpoints

    scope = "nat" if mode == "list" else "all"  # as the CLI reads: `list` only what bindings need
    catches = mode != "list"  # and only the diagnosis records each path's catch
    stages["read_rules()"], rules = timed(read_rules, scope=scope)
    commands = time_commands(rule_commands(rules.sources, scope))
    stages["  parse_source() of each source (lazy parts excluded)"], _ = timed(
        lambda: [parse_source(s) for s in rules.sources]
    )
    stages["sockets: read_endpoints()"], _ = timed(read_endpoints)
    stages["host: read_host_facts()"], _ = timed(read_host_facts)
    if _engine_socket_exists():
        stages["engine: import docker (SDK)"], _ = timed(importlib.import_module, "docker")
    stages["engine: read_containers()"], _ = timed(read_containers)
    stages["read_live() (the above, concurrent)"], snap = timed(read_live, scope=scope)
    stages["resolve()"], resolution = timed(resolve, snap.tables, snap.host.addresses, catches=catches)
    stages["join()"], _ = timed(join, resolution.bindings, snap.sockets, snap.containers)
    stages["build_inventory() (resolve+join)"], inv = timed(build_inventory, snap, catches=catches)
    counts: dict[str, int] = {
        "rules": sum(len(c.rules) for t in snap.tables for c in t.chains.values()),
        "sockets": len(snap.sockets),
        "bindings": len(inv.bindings),
    }
    doc = _render(mode, snap, inv, stages, counts)
    stages["JSON output (as to a pipe)"], _ = timed(write_json, doc)
    return {"mode": mode, "stages": stages, "commands": commands, "counts": counts}


def write_json(doc: dict[str, Any]) -> None:
    """Write `doc` to /dev/null the way the CLI writes JSON to a pipe (its `_dump`)."""
    import portscope.cli.main

    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        portscope.cli.main._dump(doc)


def _render(mode: str, snap: Any, inv: Any, stages: dict[str, float], counts: dict[str, int]) -> dict[str, Any]:
    """Build the JSON document as the CLI does (diagnosing first for conflicts), timing each step."""
    if mode == "list":
        from portscope.cli.filters import filter_bindings
        from portscope.cli.render_json import list_json

        bindings = filter_bindings(inv.bindings, container=None, port=None, proto=None)
        stages["list_json()"], doc = timed(list_json, snap, inv, bindings)
        return doc
    from portscope.cli.render_json import conflicts_json
    from portscope.core.diagnose.run import diagnose

    stages["diagnose()"], findings = timed(diagnose, snap, inv)
    counts["findings"] = len(findings)
    stages["conflicts_json()"], doc = timed(conflicts_json, snap, findings)
    return doc


def main(argv: Sequence[str]) -> int:
    mode = argv[0] if argv else "list"
    if mode not in MODULES:
        print("usage: python -m bench.probe list|conflicts", file=sys.stderr)
        return 2
    gc.disable()  # as the CLI's one-shot commands run (cli.main.main): collections would be timed in stages
    json.dump(probe(mode), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
