"""iptables dump tools' output (`*-save`, or `iptables -t TABLE -S` kept as iptables-save prints the table),
parsed while the tool prints it, and each backend's family taken from its commands' results."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from portscope.core.errors import ParseError
from portscope.core.model import Backend, BackendStatus, Family, RuleSource, Table
from portscope.core.rules.iptables_text import KnownRules, parse_iptables_lines, parse_iptables_text
from portscope.core.rules.native_nat import ChainListing
from portscope.core.tools import ToolResult

#: iptables-nft on a table it cannot show as iptables rules, as a comment in its output
#: ("# Table `nat' contains incompatible base-chains, ..." / "# Table `nat' is incompatible, ...")
#: or, from `iptables-nft -S`, as its error ("table `nat' is incompatible, use 'nft' tool.").
_INCOMPATIBLE = re.compile(r"[Tt]able `([^']+)' (?:is incompatible|contains incompatible)")


class DumpStream:
    """Parses an iptables-save tool's output while the tool is still printing it."""

    def __init__(
        self,
        backend: Backend,
        family: Family,
        origin: str,
        scope: str = "all",
        known: KnownRules | None = None,
        table: str | None = None,
    ) -> None:
        self.backend = backend
        self.table = table  # `iptables -t TABLE -S` output, read as iptables-save prints the table
        self.known = known
        self.family = family
        self.origin = origin
        self.tables: list[Table] | None = None
        self.error: ParseError | None = None
        self.comments: list[str] = []
        #: scope "nat": only what bindings come from is kept (and no text): the count of rules skipped.
        self.skipped: list[int] | None = [0] if scope == "nat" else None
        self.eager = scope != "port"  # parse the DNAT chains while reading

    def read(self, lines: Iterable[str]) -> str:
        """Consume every line (also after a parse error, so the tool can finish); returns the text."""
        seen: list[str] = []

        def kept() -> Iterator[str]:
            for line in lines:
                seen.append(line)
                yield line

        if self.table is not None:
            lines = as_save(self.table, lines)
        source = iter(lines) if self.skipped is not None else kept()
        try:
            self.tables = parse_iptables_lines(
                source,
                self.backend,
                self.family,
                self.origin,
                eager_dnat=self.eager,
                skipped=self.skipped,
                comments=self.comments,
                known=self.known,
            )
        except ParseError as exc:
            self.error = exc
            for _ in source:
                pass
        self.known = None  # the last read's rules: not needed once parsed (a later read may keep this stream)
        return "".join(seen)


def take_iptables(
    backend: Backend, family: Family, parts: Sequence[tuple[ToolResult, DumpStream | None]]
) -> tuple[list[RuleSource], list[Table], BackendStatus]:
    """One backend's family, from its commands' results (one dump, or one table each): its sources, tables and
    status; any failure but a table iptables-nft calls incompatible leaves the whole family unread."""
    sources: list[RuleSource] = []
    tables: list[Table] = []
    foreign: set[str] = set()
    skipped = 0
    for result, stream in parts:
        origin = " ".join(result.argv)
        if not result.ok:
            refused = _INCOMPATIBLE.search(result.stderr)
            if refused is None:
                return [], [], BackendStatus(backend, family, read=False, reason=result.reason())
            foreign.add(refused.group(1))
            continue
        try:
            if stream is not None and stream.error is not None:
                raise stream.error
            if stream is not None and stream.tables is not None:
                tables.extend(stream.tables)
                comments = stream.comments
            else:
                tables.extend(parse_iptables_text(result.stdout, backend=backend, family=family, source=origin))
                comments = [line for line in result.stdout.splitlines() if line.startswith("#")]
        except ParseError as exc:
            return [], [], BackendStatus(backend, family, read=False, reason=str(exc))
        # A table iptables-nft cannot show (native nft chains or rules in it) is only a shell here: the nft
        # reader reads it instead (`core.rules.live` leaves to nft every table not shown here with all its chains).
        foreign.update(m.group(1) for line in comments if (m := _INCOMPATIBLE.search(line)))
        if stream is None or stream.skipped is None:
            sources.append(
                RuleSource(backend=backend, family=family, format="iptables-save", text=result.stdout, origin=origin)
            )
        skipped += stream.skipped[0] if stream is not None and stream.skipped is not None else 0
    tables = [t for t in tables if t.name not in foreign]
    count = sum(c.size for t in tables for c in t.chains.values()) + skipped
    reasons = [foreign_reason(name) for name in sorted(foreign)]
    if any("-S" in result.argv and (stream is None or stream.table is None) for result, stream in parts):
        reasons.insert(0, "read: the nat table, where published ports are")  # `list`: `iptables-nft -t nat -S`
    return sources, tables, BackendStatus(backend, family, read=True, rules=count, reason="; ".join(reasons) or None)


def as_save(table: str, lines: Iterable[str]) -> Iterator[str]:
    """`iptables -t TABLE -S` output as iptables-save prints that table (with no counters): the same rule lines,
    each chain declared by a `:CHAIN POLICY [0:0]` line instead of `-P`/`-N`."""
    yield f"*{table}\n"
    for line in lines:
        if line.startswith("-P "):
            chain, _, policy = line[3:].rstrip("\n").partition(" ")
            yield f":{chain} {policy} [0:0]\n"
        elif line.startswith("-N "):
            chain = line[3:].rstrip("\n")
            yield f":{chain} - [0:0]\n"
        else:
            yield line
    yield "COMMIT\n"


#: The tables iptables knows (iptables-nft shows no other).
IPTABLES_TABLES = frozenset({"raw", "mangle", "filter", "nat", "security"})
NFT_FAMILY_OF: dict[str, str] = {"ipv4": "ip", "ipv6": "ip6"}  # iptables families as nft names them


def iptables_nft_tables(listings: list[ChainListing], family: Family) -> list[str]:
    """The tables of `family` that `nft list chains` names and iptables-nft can show, in the kernel's order."""
    wanted = NFT_FAMILY_OF.get(family)
    return [t.name for t in listings if t.family == wanted and iptables_nft_can_show(t)]


def iptables_nft_can_show(listing: ChainListing) -> bool:
    """True for a table iptables-nft can show as iptables rules (its own, by family and name); every other nft
    table is native."""
    return listing.family in ("ip", "ip6") and listing.name in IPTABLES_TABLES


def foreign_reason(table: str) -> str:
    return f"iptables-nft cannot show its {table} table (native nft rules): read it with nft"
