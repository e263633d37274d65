"""Read the kernel's rules from every firewall backend that holds any.

Which path reads what (numbers in the README):
- iptables-nft (libiptc cannot see nf_tables rules): `iptables-nft -t TABLE -S` for each table `nft list
  chains` names, all at once (each fetches only its own table; `iptables-nft-save` fetches every table), each
  kept as iptables-save prints it, with the nf_tables generation checked around them; otherwise
  `iptables-nft-save` / `ip6tables-nft-save` (see `read_rules`). For `list` (scope "nat") only
  `iptables-nft -t nat -S`.
  A table iptables-nft calls incompatible (native nft rules in `ip nat`, say) is left to the nft reader.
- iptables-legacy: `iptables-legacy-save` / `ip6tables-legacy-save`, only when the kernel has legacy
  tables in this network namespace (/proc/net/ip_tables_names); bulk text is ~90x faster than
  walking rules through python-iptables, which portscope keeps for atomic legacy writes.
- native nftables: `nft list chains` (it names every table, and unlike `nft list tables` it does
  not load every rule: 4 ms against 1.4-6 s with 30,000 iptables-nft rules); each table that is not one of
  iptables-nft's own (those are read above) is listed chain by chain as text beside iptables-nft's tables
  (`core.rules.native_tables`), with the same generation check; otherwise, and for a table that cannot be
  read so, `nft -j list table`. For `list`, only the nat chains bindings need (`core.rules.native_nat`).
All commands of a stage run at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from portscope.core.changes.nft_generation import generation as nft_generation
from portscope.core.changes.rule_changes import TableName, Touched
from portscope.core.errors import ParseError
from portscope.core.model import Backend, BackendStatus, Family, RuleSource, Table
from portscope.core.rules.iptables_dumps import (
    NFT_FAMILY_OF,
    DumpStream,
    iptables_nft_can_show,
    iptables_nft_tables,
    take_iptables,
)
from portscope.core.rules.iptables_text import KnownRules
from portscope.core.rules.native_nat import ChainListing, parse_chain_listing, read_nat_chains
from portscope.core.rules.native_tables import ChainByChain, TableRead
from portscope.core.rules.rule_tools import LEGACY_SAVE_TOOLS, NFT_SAVE_TOOLS, iptables_nft_command, legacy_tables
from portscope.core.tools import RunAll, ToolResult, run_all, which

_NFT_FAMILIES = {"ip": "ipv4", "ip6": "ipv6", "inet": "inet"}
#: Reads side by side that a change may interrupt before the save tools read every table in one go instead.
BY_TABLE_TRIES = 3


@dataclass(frozen=True, slots=True)
class RuleTools:
    """Where the rule tools are found and run: this host by default, another one for core.fleet."""

    which: Callable[[str], str | None] = which
    run_all: RunAll = run_all
    #: The legacy tables named in a /proc/net file (None: unreadable).
    legacy_tables: Callable[[str], list[str] | None] = legacy_tables
    #: python-iptables may read legacy tables when their save tool is missing (only on this host).
    libiptc: bool = True
    #: The nf_tables generation of the host the tools run on (`read_rules` reads iptables-nft's tables side by
    #: side, then checks that no change came between them); None: every table in one stage, as the save tools
    #: print them.
    generation: Callable[[], int] | None = nft_generation


LOCAL_TOOLS = RuleTools()


@dataclass(slots=True)
class RuleRead:
    """What reading the rules produced: raw sources, parsed tables and each backend's status.

    A read of iptables-nft's tables side by side also keeps, for a later read to build on (`Since`), the nf_tables
    generation it holds, each dump command's result as it was taken, and each native table read chain by chain.
    """

    sources: list[RuleSource] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    backends: list[BackendStatus] = field(default_factory=list)
    generation: int | None = None
    dumps: dict[tuple[str, ...], tuple[ToolResult, DumpStream]] = field(default_factory=dict)
    native: dict[TableName, TableRead] = field(default_factory=dict)

    def take(self, sources: list[RuleSource], tables: list[Table], status: BackendStatus) -> None:
        """Add what one backend's family gave."""
        self.sources.extend(sources)
        self.tables.extend(tables)
        self.backends.append(status)


@dataclass(frozen=True, slots=True)
class Since:
    """A read to build on (`last`), and `touched(last generation, now)`: the nf_tables tables changed between the
    two generations (each with the only chains that changed in it, or None), or None when that is not known (read
    everything)."""

    last: RuleRead
    touched: Callable[[int, int], Touched | None]


def read_rules(
    proc: str = "/proc",
    timeout: float = 10.0,
    scope: str = "all",
    tools: RuleTools = LOCAL_TOOLS,
    known: KnownRules | None = None,
    since: Since | None = None,
) -> RuleRead:
    """Read every backend's rules; a backend that cannot be read is reported, never fatal.

    `scope="nat"`: read only what bindings need: iptables-nft's nat table, and of native nftables
    tables the nat chains that packets to this host go through (core.rules.native_nat).
    `scope="port"`: read everything, but leave every iptables rule line and native nft text rule unparsed until
    it is looked at (a publish looks at the rules of one port; "all" parses the DNAT chains, and every native
    rule, while the tool prints them).
    `tools`: where the commands run (another host's, for core.fleet).
    `known`: rules an earlier read parsed (`iptables_text.known_rules`), not parsed again.

    iptables-nft's tables are read side by side, one `-S` each, once `nft list chains` has named them; the
    nf_tables generation, the same before and after, shows no change came between them (a table created
    meanwhile would be missed). When it moved, they are read so again (`BY_TABLE_TRIES` times in all: a burst of
    changes); when it still moves, or cannot be read, the save tools read every table in one go.
    `since`: only the nf_tables tables changed since that read are read again (the rest are its own; a native
    table only rules changed in is listed again only in those chains), when it was read side by side too and
    which tables changed is known. iptables-legacy's tables, which no notice covers, are dumped again.
    """
    if scope != "nat" and tools.generation is not None:
        last = since.last.generation if since is not None else None
        for _ in range(BY_TABLE_TRIES):  # a change that came meanwhile: read side by side again, up to a point
            before = _generation(tools.generation)
            if before is None:
                break
            kept = None
            if since is not None and last is not None:
                touched = since.touched(last, before)
                if touched is None:
                    last = None  # not known: every table, also when read again
                else:
                    kept = (since.last, touched)
            out = _read(proc, timeout, scope, tools, known, by_table=True, kept=kept)
            if _generation(tools.generation) == before:
                out.generation = before
                return out
    return _read(proc, timeout, scope, tools, known, by_table=False)


def _generation(generation: Callable[[], int]) -> int | None:
    try:
        return generation()
    except OSError:
        return None


def _read(
    proc: str,
    timeout: float,
    scope: str,
    tools: RuleTools,
    known: KnownRules | None,
    by_table: bool,
    kept: tuple[RuleRead, Touched] | None = None,
) -> RuleRead:
    """`read_rules`, with iptables-nft's tables read side by side (`by_table`) or by the save tools; `kept`: a
    read whose dumps and native tables stand for every nf_tables table but the ones named, and for the chains
    not named of a native table that only rules changed in."""
    out = RuleRead()
    nft = tools.which("nft")
    chains = [nft, "list", "chains"] if nft else None
    listing = None  # `nft list chains`, when it runs on its own first
    if chains is not None and by_table:
        (listing,) = tools.run_all([chains], timeout)
    named = parse_chain_listing(listing.stdout) if listing is not None and listing.ok else None
    jobs: list[_Job] = []
    for family, save, tool in NFT_SAVE_TOOLS:
        tables = iptables_nft_tables(named, family) if named is not None else None
        path = tools.which(tool) if tables else None
        if tables and path:
            jobs.extend(_Job("iptables-nft", family, [path, "-t", name, "-S"], name) for name in tables)
            continue
        command = iptables_nft_command(save, tool, scope, tools.which)
        if command is None:
            reason = f"{save} not found: install iptables"
            out.backends.append(BackendStatus("iptables-nft", family, read=False, reason=reason))
        else:
            jobs.append(_Job("iptables-nft", family, list(command)))
    for family, names, tool in LEGACY_SAVE_TOOLS:
        present = tools.legacy_tables(os.path.join(proc, "net", names))
        if present and tools.libiptc and tools.which(tool) is None:
            _read_with_libiptc(out, family, present)
        elif present:
            _plan(out, jobs, "iptables-legacy", family, tools.which(tool), tool)
        elif present is None:
            reason = f"cannot read /proc/net/{names}: permission denied (run portscope as root, e.g. with sudo)"
            out.backends.append(BackendStatus("iptables-legacy", family, read=False, reason=reason))
        else:
            out.backends.append(BackendStatus("iptables-legacy", family, read=True, reason="no legacy tables"))
    reused = _reused(jobs, *kept) if kept is not None else {}
    by_chain = _chain_by_chain(nft, named, scope, kept) if nft and named is not None else None
    extra = by_chain.commands() if by_chain is not None else []
    run = [job for job in jobs if tuple(job.argv) not in reused]
    commands = [job.argv for job in run] + ([chains] if chains and listing is None else []) + extra
    streams = {
        tuple(job.argv): DumpStream(job.backend, job.family, " ".join(job.argv), scope, known, job.table) for job in run
    }
    readers = {k: s.read for k, s in streams.items()} | (by_chain.readers() if by_chain is not None else {})
    results = tools.run_all(commands, timeout, readers=readers)
    listed = {r.argv: r for r in results[len(results) - len(extra) :]} if extra else {}
    results = results[: len(results) - len(extra)]
    taken = reused | {
        tuple(job.argv): (result, streams[tuple(job.argv)]) for job, result in zip(run, results, strict=False)
    }
    read: dict[tuple[Backend, Family], list[tuple[ToolResult, DumpStream]]] = {}
    for job in jobs:
        read.setdefault((job.backend, job.family), []).append(taken[tuple(job.argv)])
    for (backend, family), parts in read.items():
        out.take(*take_iptables(backend, family, parts))
    if by_table:  # what a later read may take instead of dumping again: what read well
        out.dumps = {
            argv: taken[argv]
            for job in jobs
            for argv in [tuple(job.argv)]
            if job.backend == "iptables-nft" and taken[argv][0].ok and taken[argv][1].error is None
        }
    if nft is None:
        out.backends.append(BackendStatus("nftables", None, read=False, reason="nft not found: install nftables"))
        return out
    chain_read = (by_chain, listed) if by_chain is not None else None
    _read_native(out, nft, listing or results[-1], timeout, scope, tools.run_all, chain_read, named)
    return out


def _reused(jobs: list[_Job], last: RuleRead, touched: Touched) -> dict[tuple[str, ...], tuple[ToolResult, DumpStream]]:
    """The dumps of `last` that stand for this read's jobs: each iptables-nft table's that no change named
    (iptables-legacy, which no notice covers, is dumped again by every read: 0.06 s at 10,000 rules)."""
    out = {}
    for job in jobs:
        argv = tuple(job.argv)
        if argv in last.dumps and job.table is not None and (NFT_FAMILY_OF[job.family], job.table) not in touched:
            out[argv] = last.dumps[argv]
    return out


def _chain_by_chain(
    nft: str, named: list[ChainListing], scope: str, kept: tuple[RuleRead, Touched] | None = None
) -> ChainByChain | None:
    """The native tables to list chain by chain beside iptables-nft's (every table it cannot own; for `list`,
    none: `read_nat_chains` reads only the chains bindings need); for a change (`scope="port"`) with the rules
    left untranslated until its port's check uses them. With `kept`, the last read's unchanged tables are taken
    as they are, and a table that only rules changed in is listed again only in their chains."""
    if scope == "nat":
        return None
    native = [t for t in named if t.family in _NFT_FAMILIES and not iptables_nft_can_show(t)]
    if not native:
        return None
    reader = ChainByChain(nft, native, translate=scope != "port")
    if kept is not None:
        last, touched = kept
        reader.kept = {name: read for name, read in last.native.items() if name not in touched and read.steady}
        reader.patched = {
            name: (read, chains)
            for name, read in last.native.items()
            if name in touched and (chains := touched[name]) is not None and read.steady
        }
    return reader


@dataclass(frozen=True, slots=True)
class _Job:
    """A command that prints one backend's rules of one family (`table`: just that table, with `-S`)."""

    backend: Backend
    family: Family
    argv: list[str]
    table: str | None = None


def _plan(out: RuleRead, jobs: list[_Job], backend: Backend, family: Family, path: str | None, tool: str) -> None:
    if path is None:
        out.backends.append(BackendStatus(backend, family, read=False, reason=f"{tool} not found: install iptables"))
    else:
        jobs.append(_Job(backend, family, [path]))


def _read_with_libiptc(out: RuleRead, family: Family, tables: list[str]) -> None:
    """No iptables-legacy-save on this host: read the legacy tables through python-iptables instead."""
    from portscope.core.rules.libiptc import legacy_save_text

    try:
        text = legacy_save_text(family, tables)
    except Exception as exc:  # python-iptables missing, or libiptc refusing (e.g. IPv6 NAT targets)
        reason = f"iptables-legacy-save not found and python-iptables failed ({exc}): install iptables"
        out.backends.append(BackendStatus("iptables-legacy", family, read=False, reason=reason))
        return
    result = ToolResult(argv=("python-iptables",), returncode=0, stdout=text, stderr="")
    out.take(*take_iptables("iptables-legacy", family, [(result, None)]))


def shown_by_iptables_nft(listing: ChainListing, tables: list[Table]) -> bool:
    """True when iptables-nft printed this nft table with every chain nft lists in it.

    A chain iptables-nft did not print (a native `prerouting` base chain, say) means rules only nft
    can show: the table is then read with nft, whatever iptables-nft's output said about it.
    """
    family = _NFT_FAMILIES[listing.family]
    shown: set[str] = set()
    found = False
    for t in tables:
        if t.backend == "iptables-nft" and t.family == family and t.name == listing.name:
            shown.update(t.chains)
            found = True
    return found and shown.issuperset(listing.chains)


def _read_native(
    out: RuleRead,
    nft: str,
    listing: ToolResult,
    timeout: float,
    scope: str = "all",
    run: RunAll = run_all,
    chain_read: tuple[ChainByChain, Mapping[tuple[str, ...], ToolResult]] | None = None,
    named: list[ChainListing] | None = None,
) -> None:
    """Read native nft tables (those iptables-nft does not own): listed chain by chain where `chain_read` did,
    else (or where that did not give the whole table) as JSON. `named`: `listing` parsed already."""
    if not listing.ok:
        out.backends.append(BackendStatus("nftables", None, read=False, reason=listing.reason()))
        return
    listings = named if named is not None else parse_chain_listing(listing.stdout)
    native = [t for t in listings if t.family in _NFT_FAMILIES and not shown_by_iptables_nft(t, out.tables)]
    count = 0
    reason = None if native else "no native nftables tables"
    if scope == "nat" and native:
        nat = read_nat_chains(nft, native, timeout, run)
        if nat.failure is not None:
            out.backends.append(BackendStatus("nftables", None, read=False, reason=nat.failure))
            return
        out.sources.extend(nat.sources)
        out.tables.extend(nat.tables)
        count = sum(c.size for t in nat.tables for c in t.chains.values())
        reason = None if nat.whole else "read: the nat chains that packets to this host go through"
        native = nat.whole
    by_chain: dict[int, TableRead] = {}
    if chain_read is not None:
        reader, listed = chain_read
        planned = {(t.family, t.name) for t in reader.listings}
        for n, t in enumerate(native):
            found = reader.take(t, listed) if (t.family, t.name) in planned else None
            if found is not None:
                by_chain[n] = out.native[(t.family, t.name)] = found
    wanted = [[nft, "-j", "list", "table", t.family, t.name] for n, t in enumerate(native) if n not in by_chain]
    whole = iter(run(wanted, timeout) if wanted else [])
    for n in range(len(native)):
        if n in by_chain:
            read = by_chain[n]
            out.sources.extend(read.sources)
            out.tables.append(read.table)
            count += read.rules
            continue
        result = next(whole)
        if not result.ok:
            out.backends.append(BackendStatus("nftables", None, read=False, reason=result.reason()))
            return
        from portscope.core.rules.nft_json import parse_nft_json  # only when there are native tables

        origin = " ".join(result.argv)
        try:
            tables = parse_nft_json(result.stdout, source=origin, lazy=True)
        except ParseError as exc:
            out.backends.append(BackendStatus("nftables", None, read=False, reason=str(exc)))
            return
        out.sources.append(
            RuleSource(backend="nftables", family=None, format="nft-json", text=result.stdout, origin=origin)
        )
        out.tables.extend(tables)
        count += sum(c.size for t in tables for c in t.chains.values())
    out.backends.append(BackendStatus("nftables", None, read=True, rules=count, reason=reason))
