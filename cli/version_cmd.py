"""`portscope --version` and `portscope version`: portscope's, Python's, the engine's and the firewall tools' versions.

Everything is read cheaply: one `GET /version` from the engine (short timeout), `iptables --version`,
`nft --version` and `nft list chains` (4 ms, where `nft list tables` loads every rule) run at once,
and /proc/net/ip*_tables_names for iptables-legacy. Nothing here is imported until it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from portscope.cli.output import add_output_option

SCHEMA = "portscope.version/1"
#: The tables iptables-nft makes in nft's ip / ip6 families; any other table is native nftables.
_IPTABLES_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
_ENGINE_TIMEOUT = 3.0
_TOOL_TIMEOUT = 5.0


def package_version() -> str:
    """portscope's version from the installed package's metadata ("unknown" when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("portscope")
    except PackageNotFoundError:
        return "unknown"


class VersionAction(argparse.Action):
    """`--version`: like argparse's "version" action, with the metadata read only when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print portscope's version and exit")
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: object, values: object, option: object = None):
        sys.stdout.write(f"portscope {package_version()}\n")  # stdout, as argparse's own version action
        parser.exit()


def add_version_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version", help="versions: portscope, Python, the engine, iptables/nft, the backends in use")
    add_output_option(p, SCHEMA)
    p.set_defaults(func=cmd_version)


def cmd_version(args: argparse.Namespace) -> int:
    doc = collect()
    if args.output == "json":
        import json

        sys.stdout.write(json.dumps(doc, indent=1 if sys.stdout.isatty() else None) + "\n")
    else:
        sys.stdout.write(format_text(doc))
    return 0


def collect(proc: str = "/proc", docker_host: str | None = None) -> dict[str, Any]:
    """Every version, as the `version --json` document; the engine is asked while the tools run."""
    import platform
    import threading

    engine: dict[str, Any] = {}
    asking = threading.Thread(target=lambda: engine.update(engine_version(docker_host)), daemon=True)
    asking.start()
    tools = tool_versions()
    backends = backends_in_use(proc, tools.pop("_chains"))
    asking.join(_ENGINE_TIMEOUT + 1)
    if not engine:
        engine.update(reachable=False, reason=f"no answer within {_ENGINE_TIMEOUT:g} s")
    return {
        "schema": SCHEMA,
        "portscope": package_version(),
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "engine": engine,
        "tools": tools,
        "backends": backends,
    }


def engine_version(docker_host: str | None = None, timeout: float = _ENGINE_TIMEOUT) -> dict[str, Any]:
    """One `GET /version`: reachable, endpoint, name, version, api_version, min_api_version; or a reason."""
    from portscope.core.containers import DEFAULT_DOCKER_HOST, engine_name_version

    endpoint = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if endpoint.startswith("/"):
        endpoint = "unix://" + endpoint
    if endpoint.startswith("unix://") and not os.path.exists("/" + endpoint[len("unix://") :].lstrip("/")):
        return {"reachable": False, "endpoint": endpoint, "reason": f"no socket at {endpoint[len('unix://') :]}"}
    try:
        import docker  # lazy, as in core.containers

        # An explicit API version: the SDK's "auto" would ask /version once more before our own call.
        with docker.APIClient(base_url=endpoint, version="1.24", timeout=timeout) as client:
            data = client.version(api_version=False)
    except Exception as err:  # the SDK wraps transport errors loosely; any failure is "not reachable"
        from portscope.core.printable import printable

        reason = printable(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        return {"reachable": False, "endpoint": endpoint, "reason": reason}
    name, version = engine_name_version(data)
    return {
        "reachable": True,
        "endpoint": endpoint,
        "name": name,
        "version": version,
        "api_version": data.get("ApiVersion"),
        "min_api_version": data.get("MinAPIVersion"),
    }


def tool_versions() -> dict[str, Any]:
    """`iptables --version` and `nft --version` (first line, or null when missing/failing), run at once with
    `nft list chains` (kept under "_chains" for `backends_in_use`)."""
    from portscope.core.tools import run_all, which

    found = {name: which(name) for name in ("iptables", "nft")}
    commands = {name: [path, "--version"] for name, path in found.items() if path}
    if found["nft"]:
        commands["_chains"] = [found["nft"], "list", "chains"]
    results = dict(zip(commands, run_all(list(commands.values()), _TOOL_TIMEOUT), strict=True))
    out: dict[str, Any] = {}
    for name in ("iptables", "nft"):
        result = results.get(name)
        text = (result.stdout or result.stderr).strip() if result is not None and result.ok else ""
        out[name] = text.splitlines()[0] if text else None
    out["_chains"] = results.get("_chains")
    return out


def backends_in_use(proc: str, chains: Any) -> list[dict[str, Any]]:
    """Which firewall backends hold tables: [{"backend", "tables" | null, "reason"?}] (tables null: unknown)."""
    from portscope.core.rules.native_nat import parse_chain_listing
    from portscope.core.rules.rule_tools import legacy_tables

    legacy: list[str] = []
    unreadable = False
    for family, names in (("ip", "ip_tables_names"), ("ip6", "ip6_tables_names")):
        present = legacy_tables(os.path.join(proc, "net", names))
        if present is None:
            unreadable = True
            break
        legacy.extend(f"{family} {t}" for t in present)
    out: list[dict[str, Any]] = []
    if unreadable:
        out.append({"backend": "iptables-legacy", "tables": None, "reason": "cannot read /proc/net (run as root)"})
    else:
        out.append({"backend": "iptables-legacy", "tables": legacy})
    if chains is None:
        for name in ("iptables-nft", "nftables"):
            out.append({"backend": name, "tables": None, "reason": "nft not found: install nftables"})
        return out
    if not chains.ok:
        for name in ("iptables-nft", "nftables"):
            out.append({"backend": name, "tables": None, "reason": chains.reason()})
        return out
    by_iptables: list[str] = []
    native: list[str] = []
    for t in parse_chain_listing(chains.stdout):
        ours = t.family in ("ip", "ip6") and t.name in _IPTABLES_TABLES
        (by_iptables if ours else native).append(f"{t.family} {t.name}")
    out.append({"backend": "iptables-nft", "tables": by_iptables})
    out.append({"backend": "nftables", "tables": native})
    return out


def format_text(doc: dict[str, Any]) -> str:
    """The document as aligned `name: value` lines for a person."""
    from portscope.core.printable import printable

    engine = doc["engine"]
    if engine.get("reachable"):
        api = f"API {engine.get('api_version')}" + (
            f" (min {engine['min_api_version']})" if engine.get("min_api_version") else ""
        )
        engine_text = f"{engine.get('name')} {engine.get('version')}, {api} at {engine.get('endpoint')}"
    else:
        engine_text = f"not reachable ({engine.get('reason')})"
    python = doc["python"]
    lines = [
        ("portscope", doc["portscope"]),
        ("python", f"{python['version']} ({python['implementation']})"),
        ("engine", engine_text),
        ("iptables", doc["tools"]["iptables"] or "not found"),
        ("nft", doc["tools"]["nft"] or "not found"),
    ]
    for b in doc["backends"]:
        tables = b["tables"]
        if tables is None:
            text = f"unknown ({b.get('reason')})"
        else:
            text = f"{len(tables)} table(s): {', '.join(tables)}" if tables else "no tables"
        lines.append((b["backend"], text))
    width = max(len(name) for name, _ in lines)
    return "".join(f"{name + ':':{width + 1}} {printable(value)}\n" for name, value in lines)
