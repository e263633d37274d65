"""Read only the native nftables chains that published ports live in, chain by chain.

A table with 10,000 published ports (DNAT, forward accept and masquerade each) takes nft 0.6 s to list
whole as text, 1.0-1.5 s as JSON. The bindings only need
the nat base chains on the prerouting and output hooks and the chains they jump to: listed with
`nft list chain`, level by level (all chains of a level at once), the same host costs one chain's
worth. Chains are listed as text (0.3 s for 10,000 rules against 0.55 s as JSON); a chain with a
rule the text parser does not understand is listed again as JSON, nft's stable interface. A chain
that refers to a named set or map (`@name`: its elements are not in a chain listing) makes its
table be read whole, as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from portscope.core.errors import ParseError
from portscope.core.model import Chain, Rule, RuleSource, Table
from portscope.core.rules.nft_chains import nat_entries, parse_chains
from portscope.core.tools import RunAll, ToolResult, run_all


@dataclass(slots=True)
class ChainListing:
    """What `nft list chains` says of one table: its chains and, for base chains, (type, hook)."""

    family: str  # nft's word: ip, ip6, inet
    name: str
    chains: dict[str, tuple[str, str] | None] = field(default_factory=dict)

    @property
    def entries(self) -> list[str]:
        """The nat base chains packets to this host enter."""
        return nat_entries(self.chains)


@dataclass(slots=True)
class NatRead:
    """Tables holding the chains read, their sources, and the tables that must be read whole instead."""

    tables: list[Table] = field(default_factory=list)
    sources: list[RuleSource] = field(default_factory=list)
    whole: list[ChainListing] = field(default_factory=list)
    failure: str | None = None


def parse_chain_listing(text: str) -> list[ChainListing]:
    """Tables and chains from `nft list chains` (chain names may be quoted)."""
    return [ChainListing(family, name, chains) for family, name, chains in parse_chains(text)]


def read_nat_chains(nft: str, listings: Iterable[ChainListing], timeout: float, run: RunAll = run_all) -> NatRead:
    """The chains reached from each table's nat entry chains, read level by level (`run`: core.tools.run_all
    or another host's)."""
    out = NatRead()
    for listing in listings:
        todo = listing.entries
        table: Table | None = None
        seen: set[str] = set(todo)
        whole = False
        sources_before = len(out.sources)
        while todo and not whole:
            argvs = [[nft, "list", "chain", listing.family, listing.name, c] for c in todo]
            todo = []
            results = _listings(argvs, timeout, run)
            if any("@" in r.stdout for r, _ in results if r.ok):
                whole = True  # a named set or map: its elements come with the whole table only
                break
            for result, parsed in results:
                found = _one_chain(result, out, timeout, parsed, run)
                if found is None:
                    return out
                if table is None:
                    table = found[0]
                table.chains[found[1].name] = found[1]
                for rule in found[1].rules:
                    if rule.jump and rule.jump in listing.chains and rule.jump not in seen:
                        seen.add(rule.jump)
                        todo.append(rule.jump)
        if whole:
            del out.sources[sources_before:]
            out.whole.append(listing)
        elif table is not None:
            out.tables.append(table)
    return out


def _listings(
    argvs: list[list[str]], timeout: float, run: RunAll = run_all
) -> list[tuple[ToolResult, list[Table] | None]]:
    """Each listing with its tables, parsed while nft still prints it (tables None where the text parser gave
    up: the caller parses it again or lists the chain as JSON)."""
    parsed: dict[tuple[str, ...], list[Table] | None] = {}
    readers: dict[tuple[str, ...], Callable[[Iterable[str]], str]] = {
        tuple(argv): partial(_parse_listing, tuple(argv), parsed) for argv in argvs
    }
    results = run(argvs, timeout, readers=readers)
    return [(result, parsed.get(result.argv) if result.ok else None) for result in results]


def _parse_listing(
    argv: tuple[str, ...], parsed: dict[tuple[str, ...], list[Table] | None], lines: Iterable[str]
) -> str:
    """Parse one `nft list chain` listing line by line into `parsed[argv]` (`parse_listed`); the text returned."""
    parsed[argv], text = parse_listed(argv, lines)
    return text


def parse_listed(
    argv: tuple[str, ...], lines: Iterable[str], counts: dict[str, int] | None = None, translate: bool = True
) -> tuple[list[Table] | None, str]:
    """The tables of an nft text listing parsed line by line as nft prints it (None on a parse error), and its
    text: every line is read, also after a parse error, so nft can finish. `counts`, `translate`: as
    `parse_nft_lines`."""
    from portscope.core.rules.nft_text import parse_nft_lines

    seen: list[str] = []

    def kept() -> Iterator[str]:
        for line in lines:
            seen.append(line)
            yield line

    source = kept()
    try:
        tables: list[Table] | None = parse_nft_lines(source, " ".join(argv), counts, translate)
    except ParseError:
        tables = None
    for _ in source:
        pass
    return tables, "".join(seen)


def _one_chain(
    result: ToolResult, out: NatRead, timeout: float, parsed: list[Table] | None = None, run: RunAll = run_all
) -> tuple[Table, Chain] | None:
    """(table, chain) of one `nft list chain` listing (`parsed`: already parsed); None (and `out.failure`) when
    it cannot be read."""
    from portscope.core.rules.nft_text import parse_nft_text

    origin = " ".join(result.argv)
    if not result.ok:
        out.failure = result.reason()
        return None
    tables = parsed
    if tables is None:
        try:
            tables = parse_nft_text(result.stdout, source=origin, lazy=True)
        except ParseError:
            tables = []
    found = _the_chain(tables)
    if found is not None and not any(unparsed(r) for r in found[1].rules):
        out.sources.append(
            RuleSource(backend="nftables", family=None, format="nft-text", text=result.stdout, origin=origin)
        )
        return found
    return _one_chain_json([result.argv[0], "-j", *result.argv[1:]], out, timeout, run)


def _one_chain_json(argv: list[str], out: NatRead, timeout: float, run: RunAll = run_all) -> tuple[Table, Chain] | None:
    """The chain listed again as JSON, for a rule the text parser did not understand."""
    from portscope.core.rules.nft_json import parse_nft_json

    (result,) = run([argv], timeout)
    origin = " ".join(result.argv)
    if not result.ok:
        out.failure = result.reason()
        return None
    try:
        tables = parse_nft_json(result.stdout, source=origin, lazy=True)
    except ParseError as exc:
        out.failure = str(exc)
        return None
    out.sources.append(
        RuleSource(backend="nftables", family=None, format="nft-json", text=result.stdout, origin=origin)
    )
    found = _the_chain(tables)
    if found is None:
        out.failure = f"{origin}: no chain in the listing"
    return found


def _the_chain(tables: list[Table]) -> tuple[Table, Chain] | None:
    for table in tables:
        for chain in table.chains.values():
            return table, chain
    return None


def unparsed(rule: Rule) -> bool:
    """A rule the parser kept as "unparsed": it could not translate it."""
    return rule.verdict == "other" and any(o.startswith("unparsed: ") for o in rule.matches.other)
