"""List the native nftables chains `portscope list` will need while Python is still importing portscope.

`list` reads native tables chain by chain, from the nat entry chains down their jumps
(core.rules.native_nat). On a host with 10,000 ports the big chain takes ~0.3 s to list; here a
thread started by the CLI's entry point runs the same walk on nft's text alone (jump targets by a
regular expression), so the listings are ready, or still printing, when the reader asks: it reads
them line by line as nft prints them (`Listing.lines`). It is only a
head start: the reader checks every listing it takes and lists anything this walk missed itself.
Tables that iptables-nft owns (ip/ip6 nat, filter, ... with upper-case built-in chains) are left
out: iptables-nft-save reads them. Imports only the standard library and core.tools.
"""

from __future__ import annotations

import codecs
import re
import subprocess
import threading
from collections.abc import Iterator

from portscope.core.tools import widen_pipe

ENTRY_HOOKS = ("prerouting", "output")
_JUMP = re.compile(r'(?:jump|goto) ("[^"]+"|[^\s;},]+)')
_XT_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
_XT_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})

#: Bytes read from nft's pipe at a time. nft writes a rule at a time; handing over what each write
#: brings would wake the parsing thread ~10,000 times (each a GIL hand-off) for a 10,000-rule chain.
_CHUNK = 1 << 16


class Listing:
    """One `nft list chain` the walk started: its lines as nft prints them, then its outcome."""

    def __init__(self, argv: tuple[str, ...]) -> None:
        self.argv = argv
        self._lines: list[str] = []
        self._done = False
        self._cond = threading.Condition()
        self.returncode = 0
        self.stderr = ""

    def lines(self) -> Iterator[str]:
        """Every output line, waiting for nft to print them."""
        seen = 0
        while True:
            with self._cond:
                while len(self._lines) == seen and not self._done:
                    self._cond.wait()
                new, done = self._lines[seen:], self._done
            seen += len(new)
            yield from new
            if done and seen == len(self._lines):
                return

    def result(self) -> tuple[int, str, str]:
        """(returncode, stdout, stderr) once nft has finished."""
        with self._cond:
            while not self._done:
                self._cond.wait()
            return self.returncode, "".join(self._lines), self.stderr

    def _feed(self, lines: list[str]) -> None:
        with self._cond:
            self._lines.extend(lines)
            self._cond.notify_all()

    def _finish(self, returncode: int, stderr: str) -> None:
        with self._cond:
            self.returncode, self.stderr, self._done = returncode, stderr, True
            self._cond.notify_all()


_listings: dict[tuple[str, ...], Listing] = {}
_made: list[Listing] = []  # every listing started, to be finished should the walk fail
_registry = threading.Condition()
_thread: list[threading.Thread] = []


def start(nft: str, timeout: float = 10.0) -> None:
    """Begin the walk in a daemon thread (once)."""
    if _thread:
        return
    thread = threading.Thread(target=_walk, args=(nft, timeout), daemon=True, name="portscope-nft-prefetch")
    _thread.append(thread)
    thread.start()


def take(argv: list[str] | tuple[str, ...], wait: float = 10.0) -> Listing | None:
    """The walk's listing for `argv`, handed over once (it may still be printing); None if the walk makes none."""
    if not _thread:
        return None
    key = tuple(argv)
    with _registry:
        _registry.wait_for(lambda: key in _listings or not _thread[0].is_alive(), wait)
        return _listings.pop(key, None)


def _walk(nft: str, timeout: float) -> None:
    try:
        _walk_tables(nft, timeout)
    finally:
        for found in _made:
            if not found._done:
                found._finish(1, "the listing was not read to its end")  # the reader runs it again
        with _registry:
            _registry.notify_all()


def _walk_tables(nft: str, timeout: float) -> None:
    (listing,) = _run_level([(nft, "list", "chains")], timeout)  # published too: read_rules takes it
    returncode, text, _ = listing.result()
    if returncode != 0:
        return
    for family, table, chains, entries in _tables(text):
        seen = set(entries)
        todo = list(entries)
        while todo:
            argvs = [(nft, "list", "chain", family, table, chain) for chain in todo]
            todo = []
            for found in _run_level(argvs, timeout):
                returncode, text, _ = found.result()
                if returncode != 0 or "@" in text:
                    continue  # the reader reads that table whole, or reports the failure itself
                for target in _JUMP.findall(text):
                    name = target.strip('"')
                    if name in chains and name not in seen:
                        seen.add(name)
                        todo.append(name)


def _run_level(argvs: list[tuple[str, ...]], timeout: float) -> list[Listing]:
    """Start every listing of a level, publish each, and read their output as it comes."""
    started: list[tuple[Listing, subprocess.Popen[str] | None]] = []
    for argv in argvs:
        found = Listing(argv)
        _made.append(found)
        try:
            proc: subprocess.Popen[str] | None = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
            )
            widen_pipe(proc.stdout)
        except OSError as exc:
            proc = None
            found._finish(127, str(exc))
        started.append((found, proc))
        with _registry:
            _listings[argv] = found
            _registry.notify_all()
    for found, proc in started:
        if proc is not None:
            _read(found, proc, timeout)
    return [found for found, _ in started]


def _read(found: Listing, proc: subprocess.Popen[str], timeout: float) -> None:
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        # 64 KiB at a time (read() waits for that much or the end), split into lines here: a few
        # hand-offs to the parsing thread instead of one per rule nft writes.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        raw = proc.stdout.buffer  # type: ignore[union-attr]
        rest = ""
        while chunk := raw.read(_CHUNK):
            lines = (rest + decoder.decode(chunk)).splitlines(keepends=True)
            rest = lines.pop() if lines and not lines[-1].endswith("\n") else ""
            found._feed(lines)
        found._feed([rest + decoder.decode(b"", final=True)] if rest else [])
        stderr = proc.stderr.read() if proc.stderr else ""
        found._finish(proc.wait(), stderr)
    finally:
        timer.cancel()


def parse_chains(text: str) -> list[tuple[str, str, dict[str, tuple[str, str] | None]]]:
    """(family, table, {chain: (type, hook) for a base chain, else None}) of each table in `nft list chains`."""
    out: list[tuple[str, str, dict[str, tuple[str, str] | None]]] = []
    chains: dict[str, tuple[str, str] | None] | None = None
    chain = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("table ") and line.endswith("{"):
            parts = line[6:-1].split()
            chains = {} if len(parts) == 2 else None
            if chains is not None:
                out.append((parts[0], _unquote(parts[1]), chains))
        elif line.startswith("chain ") and line.endswith("{") and chains is not None:
            chain = _unquote(line[6:-1].strip())
            chains[chain] = None
        elif line.startswith("type ") and chains is not None and chain:
            words = line.replace(";", " ").split()
            if len(words) >= 4 and words[2] == "hook":
                chains[chain] = (words[1], words[3])
    return out


def nat_entries(chains: dict[str, tuple[str, str] | None]) -> list[str]:
    """The nat base chains packets to this host enter."""
    return [c for c, base in chains.items() if base and base[0] == "nat" and base[1] in ENTRY_HOOKS]


def _tables(text: str) -> list[tuple[str, str, set[str], list[str]]]:
    """(family, table, chains, nat entry chains) of each native table in `nft list chains` output."""
    found = [(family, name, set(chains), nat_entries(chains)) for family, name, chains in parse_chains(text)]
    return [t for t in found if not _iptables_nft_table(t)]


def _iptables_nft_table(table: tuple[str, str, set[str], list[str]]) -> bool:
    family, name, _chains, entries = table
    return family in ("ip", "ip6") and name in _XT_TABLES and all(c in _XT_CHAINS for c in entries)


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name
