"""Parse `iptables-save` / `ip6tables-save` output and `iptables [-t TABLE] -S` output into tables.

Both formats may be mixed in one text (a bug report often pastes several). A section starts at
`*TABLE` (save format) or at a `# table: NAME` line (-S format); -S text with no marker is the
nat table. The family is given by the caller, or detected per section from the addresses in it.

Rule lines are only checked for shape here; their options are parsed when a chain's rules are
first used (`Chain.defer`), so a read pays only for the chains that are looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

from portscope.core.errors import ParseError
from portscope.core.model import Backend, Chain, Family, PortRange, Rule, Table
from portscope.core.rules.iptables_rule import line_dports, parse_rule_line, unparsed_rule

#: Built-in chains per table and the netfilter hook each one is.
BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
#: nat chains where the kernel refuses DNAT: they carry no binding.
_NO_DNAT_CHAINS = frozenset({"POSTROUTING", "INPUT"})
#: Rule lines read between two eager parses of the DNAT chains (`parse_iptables_lines(eager_dnat=True)`).
_EAGER_BATCH = 500
#: An IPv6 address after an address option: two colons before the next blank.
_IPV6_ADDRESS = re.compile(
    r"(?:-[sd]|--source|--destination|--to-destination|--to-source) \[?[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:"
)

#: Rules parsed by an earlier read, by (backend, family, table, line): `known_rules`.
KnownRules = Mapping[tuple[str, str, str, str], Rule]


def known_rules(tables: Iterable[Table]) -> dict[tuple[str, str, str, str], Rule]:
    """The parsed rules of the iptables chains that hold DNATs, for the next read of the same tool to reuse:
    an unchanged line there is not parsed again (a DNAT inserted in a chain of 10,000 is parsed alone)."""
    out: dict[tuple[str, str, str, str], Rule] = {}
    for table in tables:
        if table.backend not in ("iptables-nft", "iptables-legacy"):
            continue
        for chain in table.chains.values():
            if chain.may_dnat:  # parsed already when the read was resolved
                for rule in chain.rules:
                    out[(rule.backend, rule.family, rule.table, rule.text)] = rule
    return out


class _Section:
    """One table's worth of lines while it is being read."""

    def __init__(
        self, name: str, family: Family | None, backend: Backend, source: str, known: KnownRules | None = None
    ) -> None:
        self.name = name
        self.family = family
        self.backend = backend
        self.source = source
        self.known = known or {}
        self.ipv6_seen = False
        self.chains: dict[str, Chain] = {}

    def chain(self, name: str) -> Chain:
        found = self.chains.get(name)
        if found is None:
            builtin = name in BUILTIN_CHAINS.get(self.name, ())
            found = Chain(name=name, hook=name.lower() if builtin else None, kind=self.name)
            self.chains[name] = found
        return found

    def parse_pending(self, chain: Chain, items: list[tuple[int, int, str]]) -> list[Rule]:
        """Parse deferred `(line number, position, text)` items of `chain` into rules."""
        out = []
        family = self.family or "ipv4"
        known = self.known
        for number, position, line in items:
            seen = known.get((self.backend, family, self.name, line)) if known else None
            if seen is not None:  # the same line (`-A CHAIN ...`) read before: parsed already
                out.append(replace(seen, position=position, line=number))
                continue
            try:
                out.append(parse_rule_line(line, self.backend, family, self.name, chain.name, position, number))
            except ValueError as exc:
                if self.backend == "dump":
                    raise ParseError(str(exc), number, self.source) from None
                # The kernel's own output: keep the rule as evidence rather than fail the whole read.
                out.append(unparsed_rule(line, self.backend, family, self.name, chain.name, position, number, exc))
        return out


def parse_iptables_text(
    text: str,
    backend: Backend = "dump",
    family: Family | None = None,
    source: str = "input",
    skipped: list[int] | None = None,
) -> list[Table]:
    """Parse save or -S text into one `Table` per section.

    Raises `ParseError` (with the line number) for a line that is neither a rule, a chain
    declaration, a table marker nor a comment. A dump (backend "dump") is parsed completely at
    once; the kernel's own output is parsed chain by chain when first used. Never raises
    anything else. `skipped` (a one-item counter): keep only the rules bindings can come from, as
    `parse_iptables_lines` does; a dump's other rule lines are still checked.
    """
    lines = text.splitlines() if skipped is None else _lines(text)
    return parse_iptables_lines(lines, backend, family, source, skipped=skipped)


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` one at a time, so that a line that is let go (`skipped`) is freed at once."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        yield text[start:end].rstrip("\r")
        start = end + 1


def parse_iptables_lines(
    lines: Iterable[str],
    backend: Backend = "dump",
    family: Family | None = None,
    source: str = "input",
    eager_dnat: bool = False,
    skipped: list[int] | None = None,
    comments: list[str] | None = None,
    known: KnownRules | None = None,
) -> list[Table]:
    """`parse_iptables_text` over lines as they come (e.g. from a tool's pipe).

    `eager_dnat`: parse the rules of chains that hold DNAT/REDIRECT while reading, in batches, so
    that the work overlaps with the tool still printing; other chains stay lazy.
    `skipped` (a one-item counter): keep only the rules bindings can come from, the nat table's
    chains other than POSTROUTING and INPUT (where the kernel allows no DNAT), and count the rest
    there. A `portscope list` of 10,000 ports so skips the 20,000 filter ACCEPT and MASQUERADE lines.
    `comments`: a list that receives every comment line (the tools' warnings are comments).
    `known`: rules an earlier read parsed (`known_rules`); a line among them is not parsed again.
    """
    sections: list[_Section] = []
    current: _Section | None = None
    header_family: Family | None = family
    since_eager = 0
    last_name, last_section = "", None
    chain: Chain  # the chain of `last_name`, set with it
    skip = False
    for number, raw in enumerate(lines, start=1):
        if raw.startswith("-A ") and current is not None and current.family is not None:
            # The bulk of every dump: a rule line of a known family. `_read_line` does the same, slower.
            end = raw.find(" ", 3)
            name = raw[3:end] if end > 3 else ""
            if name != last_name or current is not last_section:
                if not name or name.startswith("-"):
                    raise ParseError("rule without a chain name", number, source)
                skip = skipped is not None and (current.name != "nat" or name in _NO_DNAT_CHAINS)
                chain = current.chains.get(name) or current.chain(name)
                last_name, last_section = name, current
            if skip:
                if skipped is not None:
                    skipped[0] += 1
                if backend == "dump":  # a dump's line is still checked (exit 3 names it), then let go
                    _check_line(raw.rstrip(), current, name, number)
                continue
            chain.defer_line(number, raw.rstrip(), current.parse_pending, item_dports)
            if eager_dnat:
                since_eager += 1
                if since_eager >= _EAGER_BATCH:
                    since_eager = 0
                    _parse_dnat_chains(current)
            continue
        line = raw.strip()
        if not line:
            continue
        head = line[0]
        if head == "#":
            if comments is not None:
                comments.append(line)
            marker = _table_marker(line)
            if marker:
                current = _Section(marker, family, backend, source, known)
                sections.append(current)
            elif family is None and line.startswith("# Generated by ip6tables"):
                header_family = "ipv6"
            elif family is None and line.startswith("# Generated by iptables"):
                header_family = "ipv4"
            continue
        if head == "*":
            name = line[1:].strip()
            if not name or " " in name:
                raise ParseError(f"bad table line {line!r}", number, source)
            current = _Section(name, header_family, backend, source, known)
            sections.append(current)
            continue
        if line == "COMMIT":
            current = None
            continue
        if current is None:
            current = _Section("nat", family, backend, source, known)
            sections.append(current)
        _read_line(current, number, line, source, skipped)
        if eager_dnat and current.family is not None:
            since_eager += 1
            if since_eager >= _EAGER_BATCH:
                since_eager = 0
                _parse_dnat_chains(current)
    tables = _merge([_build(section, backend) for section in sections])
    return strict_parse(tables) if backend == "dump" else tables


def item_dports(item: tuple[int, int, str]) -> tuple[PortRange, ...] | None:
    """The port match of a deferred `(line number, position, text)` item, from its text (`Chain.select`)."""
    return line_dports(item[2])


def _check_line(line: str, section: _Section, chain: str, number: int) -> None:
    """Parse one rule line and drop the record: ParseError naming the line when it is not a rule."""
    try:
        # A family not known yet ("inet") is not checked against the addresses: the kept rules are, later.
        parse_rule_line(line, section.backend, section.family or "inet", section.name, chain, 0, number)
    except ValueError as exc:
        raise ParseError(str(exc), number, section.source) from None


def _parse_dnat_chains(section: _Section) -> None:
    """Parse the pending rules of the section's chains that hold DNAT/REDIRECT."""
    for chain in section.chains.values():
        if chain.has_pending and chain.may_dnat:
            _ = chain.rules


def strict_parse(tables: list[Table]) -> list[Table]:
    """Parse every deferred rule now (raises ParseError for the first bad one)."""
    for table in tables:
        for chain in table.chains.values():
            _ = chain.rules
    return tables


def _table_marker(line: str) -> str | None:
    """The table named by a `# table: NAME` line, else None."""
    body = line[1:].strip()
    if body.startswith("table:"):
        name = body[6:].strip()
        return name or None
    return None


def _read_line(section: _Section, number: int, line: str, source: str, skipped: list[int] | None = None) -> None:
    """Record a chain declaration, policy or rule line of a section (`skipped`: see `parse_iptables_lines`)."""
    if line.startswith("-A "):
        name = line[3:].split(None, 1)[0] if len(line) > 3 else ""
        if not name or name.startswith("-"):
            raise ParseError("rule without a chain name", number, source)
        if section.family is None and not section.ipv6_seen and ":" in line:
            section.ipv6_seen = bool(_IPV6_ADDRESS.search(line))
        if skipped is not None and (section.name != "nat" or name in _NO_DNAT_CHAINS):
            skipped[0] += 1
            section.chain(name)
            if section.backend == "dump":
                _check_line(line, section, name, number)
            return
        chain = section.chains.get(name) or section.chain(name)
        chain.defer_line(number, line, section.parse_pending, item_dports)
        return
    head = line[0]
    if head == ":":
        parts = line[1:].split()
        if not parts:
            raise ParseError("chain declaration without a name", number, source)
        chain = section.chain(parts[0])
        chain.policy = parts[1] if len(parts) > 1 and parts[1] != "-" else None
        return
    if line.startswith("-P ") or line.startswith("-N "):
        parts = line.split()
        if len(parts) < 2:
            raise ParseError(f"{parts[0]} without a chain name", number, source)
        chain = section.chain(parts[1])
        if parts[0] == "-P" and len(parts) > 2:
            chain.policy = parts[2]
        return
    raise ParseError(f"not an iptables rule, chain or table line: {line[:60]!r}", number, source)


def _build(section: _Section, backend: Backend) -> Table:
    """The table of a section, its family detected from the addresses when not given."""
    if section.family is None:
        section.family = "ipv6" if section.ipv6_seen else "ipv4"
    return Table(backend=backend, family=section.family, name=section.name, chains=section.chains)


def _merge(tables: list[Table]) -> list[Table]:
    """Join sections of the same backend, family and table (a dump may repeat a table)."""
    merged: dict[tuple[str, str, str], Table] = {}
    for table in tables:
        key = (table.backend, table.family, table.name)
        first = merged.get(key)
        if first is None:
            merged[key] = table
            continue
        for name, chain in table.chains.items():
            target = first.chains.setdefault(name, Chain(name=name, hook=chain.hook, kind=chain.kind))
            target.policy = target.policy or chain.policy
            offset = target.size
            for rule in chain.rules:
                rule.position += offset
                target.rules.append(rule)
    return list(merged.values())
