"""List the native nftables chains `portscope list` will need while Python is still importing portscope.

`list` reads native tables chain by chain, from the nat entry chains down their jumps
(core.rules.native_nat). On a host with 10,000 ports the big chain takes ~0.3 s to list; here a
thread started by the CLI's entry point runs the same walk on nft's text alone (jump targets by a
regular expression), so the listings are ready, or nearly, when the reader asks. It is only a
head start: the reader checks every listing it takes and lists anything this walk missed itself.
Tables that iptables-nft owns (ip/ip6 nat, filter, ... with upper-case built-in chains) are left
out: iptables-nft-save reads them. Standard library only.
"""

from __future__ import annotations

import re
import subprocess
import threading

_JUMP = re.compile(r'(?:jump|goto) ("[^"]+"|[^\s;},]+)')
_XT_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
_XT_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})

_done: dict[tuple[str, ...], tuple[int, str, str]] = {}
_lock = threading.Lock()
_thread: list[threading.Thread] = []


def start(nft: str, timeout: float = 10.0) -> None:
    """Begin the walk in a daemon thread (once)."""
    if _thread:
        return
    thread = threading.Thread(target=_walk, args=(nft, timeout), daemon=True, name="portscope-nft-prefetch")
    _thread.append(thread)
    thread.start()


def take(argv: list[str] | tuple[str, ...], wait: float = 10.0) -> tuple[int, str, str] | None:
    """(returncode, stdout, stderr) of a listing the walk made, handed over once; None if it made none."""
    if not _thread:
        return None
    _thread[0].join(wait)
    with _lock:
        return _done.pop(tuple(argv), None)


def _walk(nft: str, timeout: float) -> None:
    try:
        listing = subprocess.run([nft, "list", "chains"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return
    for family, table, chains, entries in _tables(listing.stdout):
        seen = set(entries)
        todo = list(entries)
        while todo:
            argvs = [(nft, "list", "chain", family, table, chain) for chain in todo]
            todo = []
            for argv, result in zip(argvs, _run_all(argvs, timeout), strict=True):
                with _lock:
                    _done[argv] = result
                if result[0] != 0 or "@" in result[1]:
                    continue  # the reader reads that table whole, or reports the failure itself
                for target in _JUMP.findall(result[1]):
                    name = target.strip('"')
                    if name in chains and name not in seen:
                        seen.add(name)
                        todo.append(name)


def _run_all(argvs: list[tuple[str, ...]], timeout: float) -> list[tuple[int, str, str]]:
    procs = []
    for argv in argvs:
        try:
            procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        except OSError as exc:
            procs.append(exc)
    out: list[tuple[int, str, str]] = []
    for proc in procs:
        if isinstance(proc, OSError):
            out.append((127, "", str(proc)))
            continue
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            out.append((proc.returncode, stdout, stderr))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            out.append((124, "", "timed out"))
    return out


def _tables(text: str) -> list[tuple[str, str, set[str], list[str]]]:
    """(family, table, chains, nat entry chains) of each native table in `nft list chains` output."""
    out: list[tuple[str, str, set[str], list[str]]] = []
    current: tuple[str, str, set[str], list[str]] | None = None
    chain = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("table ") and line.endswith("{"):
            parts = line[6:-1].split()
            current = (parts[0], parts[1].strip('"'), set(), []) if len(parts) == 2 else None
            if current is not None:
                out.append(current)
        elif line.startswith("chain ") and line.endswith("{") and current is not None:
            chain = line[6:-1].strip().strip('"')
            current[2].add(chain)
        elif line.startswith("type ") and current is not None:
            words = line.replace(";", " ").split()
            if len(words) >= 4 and words[1] == "nat" and words[3] in ("prerouting", "output"):
                current[3].append(chain)
    return [t for t in out if not _iptables_nft_table(t)]


def _iptables_nft_table(table: tuple[str, str, set[str], list[str]]) -> bool:
    family, name, _chains, entries = table
    return family in ("ip", "ip6") and name in _XT_TABLES and all(c in _XT_CHAINS for c in entries)
