"""Read native nftables tables chain by chain, every chain at once, as text.

nft renders JSON at about a third of its text speed: a table with 10,000 published ports (30,000 rules) takes
1.0-1.5 s to list whole as JSON, while its chains listed as text side by side take 0.2-0.3 s, and each is parsed
while nft still prints it. A chain that names a set or map (`@name`: a chain listing has only its name) is
parsed again after `nft list sets` and `nft list maps`, with their declarations. Each table is kept as one
`nft-text` source in nft's own layout (its header, its named sets and maps, its chains in the kernel's order, as
`nft list chains` gives it), and its rules' line numbers count in that text, so a capture parses back to the same
table.

After a change that only added or deleted rules (`core.changes.rule_changes` tells which chains), a table is
listed again only in those chains; the rest are the last read's, their lines counted again in the new text
(`ChainByChain.patched`).

A table whose chains cannot all be read that way (a listing failed, nft's layout is not the expected one, a
rule the text parser does not understand) is left for the caller to read whole as JSON, nft's stable
interface: no rule is read less well than a whole JSON listing reads it. A read for one port
(`translate=False`) checks only the rules whose text does not state their port match: the others are judged by
it, as `core.publish.focus` judges iptables lines. The listings are separate dumps, so
the caller checks that the nf_tables generation did not move around them (`read_rules`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

from portscope.core.errors import ParseError
from portscope.core.model import Chain, Rule, RuleSource, Table, no_stated_port
from portscope.core.rules.native_nat import ChainListing, parse_listed, unparsed
from portscope.core.rules.nft_statements import TABLE_FAMILIES
from portscope.core.tools import ToolResult

#: At most this many chains are listed one by one (one nft process each); the tables beyond are read whole.
MAX_CHAINS = 64
_DECLARED = ("sets", "maps")
Argv = tuple[str, ...]


@dataclass(slots=True)
class TableRead:
    """One table read chain by chain: the table, its source (the text in nft's layout) and its rule
    count as its listings have them (a line with a verdict map is one rule there, several records once parsed).

    What a later read needs to list only the chains a change named and take the rest from this one: the table's
    chains as `nft list chains` gave them (`listing`), each text chain's lines (`inner`) and rule count
    (`counts`), the line its block starts on in the source text (`starts`), and the set and map declarations."""

    table: Table
    sources: list[RuleSource] = field(default_factory=list)
    rules: int = 0
    listing: ChainListing | None = None
    inner: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)
    declared: list[list[str]] | None = None  # None: not listed (no chain named a set or map)
    listed: frozenset[str] = frozenset()  # the chains this read listed (the others are an earlier read's)

    @property
    def steady(self) -> bool:
        """True when the table changes only by commits, which notices name: no set whose elements the packet path
        adds (`flags dynamic`) or time takes away (`timeout`, `expires`), which no notice tells."""
        return not any(word in s.text for s in self.sources for word in ("dynamic", "timeout", "expires"))

    def patchable(self, listing: ChainListing, chains: frozenset[str]) -> bool:
        """True when a read of `listing`'s table may list only `chains` again and take the rest from this read:
        it has the same chains, in the same order, all read as text."""
        same = self.listing is not None and list(self.listing.chains.items()) == list(listing.chains.items())
        return same and set(self.inner) == set(listing.chains) and chains <= set(self.inner)


class ChainByChain:
    """The commands that list `listings`' tables chain by chain, their readers, and the tables put together.

    Tables past `MAX_CHAINS` chains in all are left out (`listings` holds the others).
    `translate=False` (a read for one port, `core.publish.focus`): the rules are translated when used, not while
    nft prints them, and those whose port match their text says (`nft_text.line_dports`) are not translated to
    check that the text parser reads them: a read for one port leaves the other ports' rules unparsed.
    """

    def __init__(self, nft: str, listings: list[ChainListing], translate: bool = True) -> None:
        self.nft = nft
        self.translate = translate
        self.listings: list[ChainListing] = []
        count = 0
        for listing in listings:
            if count + len(listing.chains) <= MAX_CHAINS:
                count += len(listing.chains)
                self.listings.append(listing)
        #: Each text listing's chain, parsed by its reader, and its number of rule lines.
        self._parsed: dict[Argv, tuple[Chain, int] | None] = {}
        #: Tables an earlier read holds as they are now (no change since): not listed again.
        self.kept: dict[tuple[str, str], TableRead] = {}
        #: Tables an earlier read holds as they are now but for some chains (only rules changed there): only those
        #: chains are listed again, when the table still has the chains it had then (`TableRead.patchable`).
        self.patched: dict[tuple[str, str], tuple[TableRead, frozenset[str]]] = {}

    def commands(self) -> list[list[str]]:
        """Every chain's listing, then the named sets and maps (once, for every table listed whole)."""
        out = [list(self._argv(listing, chain)) for listing in self._listed() for chain in self._chains(listing)]
        whole = any(self._patch(listing) is None for listing in self._listed())
        return out + [[self.nft, "list", what] for what in _DECLARED] if whole else out

    def readers(self) -> dict[Argv, Callable[[Iterable[str]], str]]:
        """For `core.tools.run_all`: each text listing parsed line by line while nft prints it."""
        return {
            argv: partial(self._read_chain, argv)
            for listing in self._listed()
            for chain in self._chains(listing)
            for argv in [self._argv(listing, chain)]
        }

    def take(self, listing: ChainListing, results: Mapping[Argv, ToolResult]) -> TableRead | None:
        """`listing`'s table from the commands' `results` (or as kept); None when it must be read whole instead."""
        kept = self.kept.get((listing.family, listing.name))
        if kept is not None:
            return kept
        header = f"table {listing.family} {listing.name} {{"
        patch = self._patch(listing)
        listed = self._chains(listing)
        inner: dict[str, list[str]] = dict(patch.inner) if patch is not None else {}
        for name in listed:
            result = results.get(self._argv(listing, name))
            if result is None or not result.ok:
                return None
            lines = _inner(result.stdout, header)
            if lines is None:
                return None
            inner[name] = lines
        inner = {name: inner[name] for name in listing.chains if name in inner}  # the kernel's order
        # The named sets and maps are in the text when a chain names one, as in a read of every chain.
        uses_sets = any("@" in line for lines in inner.values() for line in lines)
        declared = patch.declared if patch is not None else self._declarations(header, results) if uses_sets else None
        if uses_sets and declared is None:
            return None  # the last read did not list them (no chain named one then)
        shown = (declared or []) if uses_sets else []
        text, starts = _layout(header, shown, inner)
        origin = f"{self.nft} list chain {listing.family} {listing.name} (every chain), list sets, list maps"
        # The chains listed now that name a set or map, parsed again beside the declarations.
        named = [name for name in listed if name in inner and any("@" in line for line in inner[name])]
        parsed = _parse_with_sets(header, shown if named else [], {c: inner[c] for c in named}, starts, origin)
        if parsed is None:
            return None
        table, counts = parsed
        source = RuleSource(backend="nftables", family=None, format="nft-text", text=text, origin=origin)
        read = TableRead(
            table, [source], listing=listing, inner=inner, starts=starts, declared=declared, listed=frozenset(listed)
        )
        chains: dict[str, Chain] = {}
        for name in listing.chains:
            if name in table.chains:
                chain = table.chains[name]
            elif name not in listed and patch is not None:
                chain = _moved(patch.table.chains[name], starts[name] - patch.starts[name])
                counts[name] = patch.counts[name]
            else:
                streamed = self._parsed.get(self._argv(listing, name))
                if streamed is None:
                    return None
                chain, counts[name] = streamed
                chain.move_lines(starts[name] - 2)  # its listing's block starts on line 2
            chains[name] = chain
        if any(unparsed(rule) for chain in table.chains.values() for rule in self._checked(chain)):
            return None  # (a chain streamed was checked by its reader)
        read.counts = counts
        read.rules += sum(counts.values())
        table.chains = chains
        return read

    def _checked(self, chain: Chain) -> list[Rule]:
        """The rules of a chain just listed that must read well for the table to be read as text: all of them, or
        with `translate=False`, those whose text does not say their port match (the rest are judged by it)."""
        return chain.rules if self.translate else chain.select(no_stated_port)

    def _declarations(self, header: str, results: Mapping[Argv, ToolResult]) -> list[list[str]] | None:
        """The set and map declarations `nft list sets` / `nft list maps` printed in the table with `header`."""
        declared: list[list[str]] = []
        for what in _DECLARED:
            result = results.get((self.nft, "list", what))
            if result is None or not result.ok:
                return None
            declared += _declared(result.stdout, header)
        return declared

    def _listed(self) -> list[ChainListing]:
        return [t for t in self.listings if (t.family, t.name) not in self.kept]

    def _patch(self, listing: ChainListing) -> TableRead | None:
        """The earlier read `listing`'s table is patched from (only the chains a change named are listed), if any."""
        found = self.patched.get((listing.family, listing.name))
        if found is None or not found[0].patchable(listing, found[1]):
            return None
        return found[0]

    def _chains(self, listing: ChainListing) -> list[str]:
        """The chains of `listing`'s table to list: the ones a change named when it is patched, else all."""
        patch = self._patch(listing)
        if patch is None:
            return list(listing.chains)
        chains = self.patched[(listing.family, listing.name)][1]
        return [name for name in listing.chains if name in chains]

    def _argv(self, listing: ChainListing, chain: str) -> Argv:
        return (self.nft, "list", "chain", listing.family, listing.name, chain)

    def _read_chain(self, argv: Argv, lines: Iterable[str]) -> str:
        """Parse one chain's listing while nft prints it, its rules translated (`_checked`) in this reader's thread;
        None in `_parsed` when the text parser cannot read it (the table is then read as JSON, unless the chain
        names a set and is parsed again beside the declarations)."""
        counts: dict[str, int] = {}
        tables, text = parse_listed(argv, lines, counts, self.translate)
        found = None
        if tables is not None and len(tables) == 1 and len(tables[0].chains) == 1:
            chain = next(iter(tables[0].chains.values()))
            if not any(unparsed(rule) for rule in self._checked(chain)):  # translated (or ports read) in this thread
                found = chain, counts.get(chain.name, 0)
        self._parsed[argv] = found
        return text


def _inner(listing: str, header: str) -> list[str] | None:
    """The lines of a one-chain listing between its table's header and closing brace, or None when it is not
    laid out that way."""
    lines = listing.rstrip("\n").split("\n")
    if len(lines) < 2 or lines[0] != header or lines[-1] != "}":
        return None
    return lines[1:-1]


def _declared(listing: str, header: str) -> list[list[str]]:
    """The blocks `nft list sets` / `nft list maps` prints inside the table with `header`, one list of lines each."""
    blocks: list[list[str]] = []
    inside = False
    for line in listing.split("\n"):
        if not inside:
            inside = line == header
        elif line == "}":
            inside = False
        elif line.startswith("\t") and not line.startswith("\t\t") and line.rstrip().endswith("{"):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return blocks


def _layout(header: str, declared: list[list[str]], inner: dict[str, list[str]]) -> tuple[str, dict[str, int]]:
    """The table's text in nft's layout, and the line each text chain's block starts on."""
    lines = [header]
    for block in declared:
        lines += block
    starts: dict[str, int] = {}
    for name, block in inner.items():
        starts[name] = len(lines) + 1
        lines += block
    return "\n".join([*lines, "}", ""]), starts


def _parse_with_sets(
    header: str, declared: list[list[str]], named: dict[str, list[str]], starts: dict[str, int], origin: str
) -> tuple[Table, dict[str, int]] | None:
    """The table with only the chains in `named`, parsed beside the set and map declarations (their rules' lines
    counted in the whole table's text, `starts`), and each one's number of rule lines."""
    from portscope.core.rules.nft_text import parse_nft_text

    text, here = _layout(header, declared, named)
    try:
        tables = parse_nft_text(text, source=origin, lazy=True)
    except ParseError:
        return None
    if len(tables) != 1 or set(tables[0].chains) != set(named):
        return None
    table = tables[0]
    if table.family != TABLE_FAMILIES.get(header.split(" ")[1]):
        return None
    counts = {name: chain.size for name, chain in table.chains.items()}  # not translated yet: a line each
    for name, chain in table.chains.items():
        chain.move_lines(starts[name] - here[name])
    return table, counts


def _moved(chain: Chain, by: int) -> Chain:
    """An earlier read's parsed chain with its rule lines counted `by` lines further on: a new chain of new rules
    when they moved (the earlier read's own stay as they are), the chain itself when they did not."""
    if not by:
        return chain
    rules = [replace(rule, line=None if rule.line is None else rule.line + by) for rule in chain.rules]
    return Chain(chain.name, chain.hook, chain.kind, chain.policy, chain.priority, parsed=rules)
