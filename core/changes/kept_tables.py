"""After a rule change, the iptables tables and chains that read exactly as before are the last read's own.

A new read of the rules parses its tables again (the nat chains with DNATs at once, the rest on first use).
Where a chain's lines are the same as in the last read — its declaration, and each rule's text and line
number (rules record where they were read) — the last read's `Chain`, already parsed, stands in for the
new one; a table whose every chain is kept is the last read's `Table`. After a DNAT is inserted in nat
DOCKER, neither the filter table nor nat POSTROUTING (10,000 rules each on a large host) is parsed again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from portscope.core.model import Chain, RuleSource, Table
from portscope.core.rules.live import RuleRead

TableKey = tuple[str, str | None, str]  # backend, family, table name
#: A chain as read: its declaration (policy, counters left out) and its rules' (line number, text).
ChainLines = tuple[str | None, list[tuple[int, str]]]


#: Each iptables-save table of a read, chain by chain (None for a table printed twice): `read_chains`.
ChainMap = dict[TableKey, dict[str, ChainLines] | None]


def keep_unchanged(new: RuleRead, last: RuleRead, before: ChainMap, now: ChainMap) -> RuleRead:
    """`new`, with the chains (and whole tables) that read exactly as in `last` taken from `last`; `before` and
    `now` are `read_chains` of their sources (each read's text is split once, however often it is compared)."""
    if not before:
        return new
    old_tables = _unique_tables(last.tables)
    new_counts = Counter(_key(t) for t in new.tables)
    tables = []
    for table in new.tables:
        key = _key(table)
        old, lines, old_lines = old_tables.get(key), now.get(key), before.get(key)
        if old is None or lines is None or old_lines is None or new_counts[key] != 1:
            tables.append(table)
        else:
            tables.append(_kept(table, old, lines, old_lines))
    if all(a is b for a, b in zip(tables, new.tables, strict=True)):
        return new
    return replace(new, tables=tables)


def _kept(table: Table, old: Table, lines: dict[str, ChainLines], old_lines: dict[str, ChainLines]) -> Table:
    """`table` with each chain read as in `old` taken from `old`; `old` itself when every chain is."""
    chains: dict[str, Chain] = {}
    for name, chain in table.chains.items():
        same = name in lines and lines[name] == old_lines.get(name) and name in old.chains
        chains[name] = old.chains[name] if same else chain
    if list(chains) == list(old.chains) and all(chains[n] is old.chains[n] for n in chains):
        return old
    if all(chains[n] is table.chains[n] for n in chains):
        return table
    return Table(backend=table.backend, family=table.family, name=table.name, chains=chains)


def _key(table: Table) -> TableKey:
    return (table.backend, table.family, table.name)


def _unique_tables(tables: list[Table]) -> dict[TableKey, Table]:
    """The tables by key, leaving out any key two tables share (which is which would be a guess)."""
    counts = Counter(_key(t) for t in tables)
    return {_key(t): t for t in tables if counts[_key(t)] == 1}


def read_chains(sources: list[RuleSource]) -> ChainMap:
    """Each table of the iptables-save sources, chain by chain; None for a table printed twice."""
    out: ChainMap = {}
    chains: dict[str, ChainLines] = {}
    for source in sources:
        if source.format != "iptables-save":
            continue
        for number, line in enumerate(source.text.split("\n"), start=1):
            if line.startswith("*"):
                key = (source.backend, source.family, line[1:])
                chains = {}
                out[key] = None if key in out else chains
            elif line.startswith(":"):
                name, _, rest = line[1:].partition(" ")
                chains[name] = (rest.rsplit(" [", 1)[0], chains.get(name, (None, []))[1])
            elif line.startswith("-A "):
                name = line[3:].split(" ", 1)[0]
                chains.setdefault(name, (None, []))[1].append((number, line))
    return out
