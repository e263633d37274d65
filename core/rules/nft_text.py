"""Parse `nft list ruleset` / `nft list table` text into portscope's tables.

The layout is line based, as nft prints it: `table FAMILY NAME {`, then `set`/`map`/`chain`
blocks (other blocks such as `flowtable` or `counter` are skipped), one rule a line. Tabs or
spaces may indent; `#` comments (`# Warning: ...`, `# handle 5`) are ignored. A rule line is cut
into tokens (plain `str.split` unless it has quotes or braces) and then into terms that
`nft_statements` turns into records. Rules are translated when the input ends, so sets may be declared
after use; with `lazy=True` (nft's own output) each chain's lines wait until its rules are first used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from portscope.core.errors import ParseError
from portscope.core.model import Chain, PortRange, Rule, Table, TableFamily
from portscope.core.rules.nft_statements import (
    NAT_KINDS,
    SKIPPED_FAMILIES,
    TABLE_FAMILIES,
    VERDICT_NAMES,
    Comment,
    Match,
    NatStmt,
    Note,
    RuleSite,
    Term,
    Value,
    VerdictStmt,
    VmapStmt,
    build_rules,
    gc_paused,
    set_elements,
    split_elements,
    unparsed_rule,
    unquote,
)
from portscope.core.rules.nft_text_fast import text_dports, text_fast_rule

_TOKEN = re.compile(r'"[^"]*"|\{[^{}]*\}|[^\s"{]+|\S')
_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")
_BASE_CHAIN = re.compile(
    r"type (\S+) hook (\S+)(?: device \S+| devices = \{[^}]*\})? priority ([^;]+);(?:\s*policy (\S+);)?\s*"
)
_TABLE = re.compile(r'table\s+(?:(\w+)\s+)?("[^"]*"|\S+)\s*\{$')

PAYLOAD_PROTOCOLS = frozenset(
    [
        "ip",
        "ip6",
        "tcp",
        "udp",
        "udplite",
        "sctp",
        "dccp",
        "th",
        "icmp",
        "icmpv6",
        "igmp",
        "ether",
        "vlan",
        "arp",
        "ah",
        "esp",
        "comp",
        "gre",
    ]
)
UNQUALIFIED_META = frozenset(["iifname", "oifname", "iif", "oif", "iifgroup", "oifgroup"])
_BINOPS = frozenset({"&", "|", "^", "<<", ">>"})
_RELOPS = frozenset({"==", "!=", "<", ">", "<=", ">=", "eq", "ne", "lt", "gt", "le", "ge"})
_FIB_RESULTS = frozenset({"type", "oif", "oifname"})
_LOG_OPTIONS = frozenset({"prefix", "level", "group", "snaplen", "queue-threshold", "flags"})
_NAT_FLAGS = frozenset({"random", "fully-random", "persistent", "netmap"})


def parse_nft_text(text: str, source: str = "nft", lazy: bool = False) -> list[Table]:
    """Parse nft's text listing; raise ParseError (with its line) on input that is not one.

    `lazy=False` (dumps, tests): every rule is translated before returning. `lazy=True` (nft's own
    output): a chain's rules are translated when `Chain.rules` is first used, and a rule that cannot
    be translated is kept as an "unparsed" record instead of failing the read. The block structure
    is checked either way.
    """
    parser = _Parser(source, lazy)
    lines = text.split("\n")
    for number, raw in enumerate(lines, 1):
        parser.feed(raw, number)
    return parser.finish(len(lines))


def parse_nft_lines(
    lines: Iterable[str], source: str = "nft", counts: dict[str, int] | None = None, translate: bool = True
) -> list[Table]:
    """`parse_nft_text(..., lazy=True)` over lines as nft prints them, translating rules while reading.

    nft prints a 10,000-rule chain over ~0.2 s: parsing each batch of rules as it arrives overlaps
    the work with nft still printing. `counts`: filled with each chain's number of rule lines (a line can
    give several records, or none). `translate=False`: the rules wait until they are used, as with `lazy`.
    """
    parser = _Parser(source, lazy=True)
    number = 0
    for number, raw in enumerate(lines, 1):
        parser.feed(raw, number)
        if translate and number % _EAGER_BATCH == 0 and parser.chain is not None and parser.chain.has_pending:
            _ = parser.chain.rules
    tables = parser.finish(number)
    if counts is not None:
        for state in parser.tables.values():
            counts.update(state.counts)
    return tables


#: Lines read between two translations of the pending rules (`parse_nft_lines`).
_EAGER_BATCH = 500


# --- rule lines --------------------------------------------------------------------------------

_PAD = [""] * 6  # appended to a rule's tokens so that looking a few tokens ahead never runs off the end


def line_dports(item: tuple[int, str, int]) -> tuple[PortRange, ...] | None:
    """For `Chain.select`: the port match of a deferred `(position, line, line number)` item, read from its text
    where the text surely says it (`text_dports`); else None. Such a rule matches only those ports in the kernel,
    even where the rest of it cannot be read."""
    return text_dports(rule_text(item[1]))


def rule_text(line: str) -> str:
    """The rule as shown to users: `counter packets N bytes M` reduced to `counter`."""
    if "counter packets " not in line:
        return line
    line = line.replace("counter packets 0 bytes 0", "counter")  # the usual case, without a regex
    return _COUNTER.sub("counter", line) if "counter packets " in line else line


def tokenize(line: str) -> list[str]:
    """Tokens of one rule: words, `"quoted strings"`, `{ anonymous, sets }`.

    A line without braces is cut with `str.split` (around its quoted strings), which gives exactly what
    `tokenize_any` gives (tests/unit/test_rule_tokens.py holds them equal).
    """
    if "{" in line:
        return tokenize_any(line)
    if '"' not in line:
        return line.split()
    tokens: list[str] = []
    for index, part in enumerate(line.split('"')):
        if index % 2:
            tokens.append(f'"{part}"')
        else:
            tokens.extend(part.split())
    return tokens if line.count('"') % 2 == 0 else tokenize_any(line)


def tokenize_any(line: str) -> list[str]:
    """`tokenize` of any line, by one regular expression."""
    return _TOKEN.findall(line)


def terms_from_tokens(tokens: list[str]) -> list[Term]:
    """Cut a rule's tokens into terms; never fails (what it cannot read becomes a `cond` note)."""
    terms: list[Term] = []
    n = len(tokens)
    padded = tokens + _PAD
    i = 0
    while i < n:
        reader = _READERS.get(padded[i])
        term, end = reader(padded, i, n) if reader is not None else (None, i)
        if term is None or end <= i:  # not a known statement: group words up to the next one that is
            end = i + 1
            while end < n and padded[end] not in _READERS:
                end += 1
            term = Note("cond", " ".join(padded[i:end]))
        terms.append(term)
        i = end
    return terms


# Each reader gets the padded tokens, the index of its first word and the real token count, and
# returns (term, index after it); (None, i) when the words do not form that statement.
Reader = Callable[[list[str], int, int], tuple[Term | None, int]]


def _key_end(t: list[str], i: int, n: int) -> int:
    """Index after the selector at `t[i]` (`tcp dport`, `meta l4proto`, `iifname`, `fib daddr . iif type`)."""
    word = t[i]
    if word in UNQUALIFIED_META:
        return i + 1
    if word in PAYLOAD_PROTOCOLS or word == "meta":
        return i + 2 if i + 1 < n else i
    if word == "ct":
        j = i + 1
        j += t[j] in ("original", "reply")
        j += t[j] in ("ip", "ip6")
        return j + 1 if j < n else i
    if word == "fib":
        for j in range(i + 1, min(i + 8, n)):
            if t[j] in _FIB_RESULTS:
                return j + 1
    return i


def _read_expression(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    """`KEY [binop X]... [OP] VALUE`, `KEY vmap VALUE` or `KEY set EXPR`."""
    j = _key_end(t, i, n)
    if j == i:
        return None, i
    follower = t[j]
    if follower in _SPECIAL_FOLLOWERS:
        return _read_complex_expression(t, i, j, n)
    key = t[i] if j == i + 1 else " ".join(t[i:j])
    op = ""
    if follower in _RELOPS:
        op, j = follower, j + 1
    if j >= n:
        return Note("cond", " ".join(t[i:j])), j
    token = t[j]
    if t[j + 1] == "/" and j + 2 < n:  # `tcp flags syn / syn,ack`
        value: Value = f"{token} / {t[j + 2]}"
        return Match(key=key, op=op, value=value, text=f"{key} {value}"), j + 3
    value = split_elements(token[1:-1]) if token[0] == "{" and token[-1] == "}" else token
    text = f"{key} {op} {token}" if op else f"{key} {token}"
    return Match(key, op, value, text), j + 1


def _read_complex_expression(t: list[str], i: int, j: int, n: int) -> tuple[Term | None, int]:
    """Keys joined with ` . `, keys with binary operations, verdict maps and `set` statements."""
    while t[j] == "." and j + 1 < n and _key_end(t, j + 1, n) > j + 1:
        j = _key_end(t, j + 1, n)
    while t[j] in _BINOPS and j + 1 < n:
        j += 2
    key = " ".join(t[i:j])
    if t[j] == "vmap" and j + 1 < n:
        return VmapStmt(key, _value(t[j + 1]), f"{key} vmap {t[j + 1]}"), j + 2
    if t[j] == "set":
        end = _operand_end(t, j + 1, n)
        return Note("mark" if key == "meta mark" else "effect", " ".join(t[i:end])), end
    op = ""
    if t[j] in _RELOPS:
        op, j = t[j], j + 1
    if j >= n:
        return Note("cond", " ".join(t[i:j])), j
    return Match(key=key, op=op, value=_value(t[j]), text=" ".join(t[i : j + 1])), j + 1


def _operand_end(t: list[str], i: int, n: int) -> int:
    """Index after an operand: a key or a literal, then `binop operand` pairs, then `map X`."""
    if i >= n:
        return i
    j = _key_end(t, i, n)
    j = j if j > i else i + 1
    while t[j] in _BINOPS and j + 1 < n:
        j += 2
    if t[j] == "map" and j + 1 < n:
        j += 2
    return j


def _value(token: str) -> Value:
    """`{ a, b }` -> its elements; any other token as printed."""
    if token[:1] == "{" and token[-1:] == "}":
        return split_elements(token[1:-1])
    return token


def _read_verdict(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    word, end, target = t[i], i + 1, None
    if word in ("jump", "goto"):
        if i + 1 >= n:
            return None, i
        target, end = unquote(t[i + 1]), i + 2
    elif word == "reject" and t[end] == "with":
        end += 3 + (t[end + 2] == "type")
    elif word == "queue":
        while end < n and t[end] not in _READERS:
            end += 1
    end = min(end, n)
    return VerdictStmt(word, target, word if end == i + 1 else " ".join(t[i:end])), end


def _read_nat(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    """`dnat [ip|ip6] to TARGET [flags]`; a computed target (`... map @m`) gives target None."""
    j, family = i + 1, None
    target: str | None = ""
    if t[j] in ("ip", "ip6") and t[j + 1] in ("to", "addr", "prefix"):
        family, j = t[j], j + 1
    if t[j] == "to" and j + 1 < n:
        start = j + 1
        if t[start] in ("numgen", "jhash", "symhash") and "map" in t[start:n]:  # a generator's value, mapped
            j, target = min(t.index("map", start) + 2, n), None
        elif _key_end(t, start, n) > start or t[start + 1] == "map":
            j, target = _operand_end(t, start, n), None
        else:
            j, target = start + 1, t[start]
    elif j < n and t[j] not in _READERS and not _is_nat_flags(t[j]):
        target = None  # `dnat ip addr . port to ...` and other forms portscope does not model
        while j < n and t[j] != "comment":
            j += 1
    while j < n and t[j] not in _READERS and _is_nat_flags(t[j]):
        j += 1
    return NatStmt(t[i], family, target, " ".join(t[i:j])), j


def _is_nat_flags(token: str) -> bool:
    return all(flag in _NAT_FLAGS for flag in token.split(","))


def _read_counter(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    end = i + 5 if t[i + 1] == "packets" else i + 3 if t[i + 1] == "name" else i + 1
    end = min(end, n)
    return (_COUNTER_NOTE if end == i + 1 else Note("counter", " ".join(t[i:end]))), end


def _read_comment(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    if i + 1 >= n:
        return None, i
    return Comment(unquote(t[i + 1]), f"comment {t[i + 1]}"), i + 2


def _read_log(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    end = i + 1
    while t[end] in _LOG_OPTIONS and end + 1 < n:
        end += 2
    return Note("log", " ".join(t[i:end])), end


def _read_limit(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    """`limit rate [over] N[ unit]/period [burst N [unit]]` or `limit name X`: a condition."""
    j = i + 1
    if t[j] == "name":
        j += 2
    elif t[j] == "rate":
        j += 1 + (t[j + 1] == "over")
        j += 1 if "/" in t[j] else 2
        if t[j] == "burst":
            j += 2 + (t[j + 2] in ("packets", "bytes", "kbytes", "mbytes"))
    end = min(j, n)
    return Note("cond", " ".join(t[i:end])), end


def _read_notrack(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    return Note("effect", "notrack"), i + 1


def _read_xt(t: list[str], i: int, n: int) -> tuple[Term | None, int]:
    """`xt target "DNAT"` / `xt match "addrtype"` (iptables-nft rules nft cannot translate)."""
    end = min(i + 3, n)
    return Note("effect" if t[i + 1] == "target" else "cond", " ".join(t[i:end])), end


_COUNTER_NOTE = Note("counter", "counter")
_SPECIAL_FOLLOWERS = _BINOPS | {".", "vmap", "set"}
_READERS: dict[str, Reader] = {
    **dict.fromkeys(PAYLOAD_PROTOCOLS | UNQUALIFIED_META | {"meta", "ct", "fib"}, _read_expression),
    **dict.fromkeys(VERDICT_NAMES, _read_verdict),
    **dict.fromkeys(NAT_KINDS, _read_nat),
    "counter": _read_counter,
    "comment": _read_comment,
    "log": _read_log,
    "limit": _read_limit,
    "notrack": _read_notrack,
    "xt": _read_xt,
}


# --- blocks ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _TableState:
    table: Table
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # rules seen per chain
    skip: bool = False
    lazy: bool = False
    source: str = "nft"

    def parse(self, chain: Chain, items: list[tuple[int, str, int]]) -> list[Rule]:
        """Records of a chain's deferred `(position, line, line number)` items; sets are all known by now."""
        table, sets, out = self.table, self.sets, []
        with gc_paused():
            for position, line, number in items:
                site = RuleSite(
                    family=table.family,
                    table=table.name,
                    chain=chain.name,
                    position=position,
                    text=rule_text(line),
                    line=number,
                )
                try:
                    fast = text_fast_rule(site)
                    if fast is not None:
                        out.append(fast)
                        continue
                    out.extend(build_rules(terms_from_tokens(tokenize(site.text)), site, sets))
                except ValueError as exc:  # a rule no nft prints (`dnat to 12345:x`): a dump's fault
                    if not self.lazy:
                        raise ParseError(str(exc), number, self.source) from None
                    out.append(unparsed_rule(site, exc))
                except Exception as exc:  # a translator bug must not cost the whole read of the kernel's rules
                    if not self.lazy:
                        raise
                    out.append(unparsed_rule(site, exc))
        return out


class _Parser:
    """A line-by-line state machine over the block structure."""

    def __init__(self, source: str, lazy: bool = False) -> None:
        self.source = source
        self.lazy = lazy
        self.tables: dict[tuple[str, str], _TableState] = {}
        self.table: _TableState | None = None
        self.chain: Chain | None = None
        self.block: tuple[str, str] | None = None  # (kind, name) of the set/map/other block being read
        self.depth = 0  # nesting inside a skipped block
        self.elements: list[str] | None = None  # lines of an `elements = { ...` still open
        self.element_lines: list[str] = []

    def error(self, message: str, line: int) -> ParseError:
        return ParseError(message, line, self.source)

    def feed(self, raw: str, number: int) -> None:
        line = _strip_comment(raw).strip()
        if not line:
            return
        if self.elements is not None:
            self._continue_elements(line)
        elif self.block is not None:
            self._in_block(line, number)
        elif self.chain is not None:
            self._in_chain(line, number)
        elif self.table is not None:
            self._in_table(line, number)
        else:
            self._top(line, number)

    def finish(self, last_line: int) -> list[Table]:
        if self.table is not None:
            what = f"table {self.table.table.name}" if self.chain is None else f"chain {self.chain.name}"
            raise self.error(f"unexpected end of input: {what} is not closed with '}}'", last_line)
        tables = [state.table for state in self.tables.values() if not state.skip]
        if not self.lazy:
            for table in tables:
                for chain in table.chains.values():
                    _ = chain.rules
        return tables

    def _top(self, line: str, number: int) -> None:
        if line.startswith("define "):
            return
        header = _TABLE.match(line)
        if header is None:
            raise self.error(f"expected 'table FAMILY NAME {{', found {line[:60]!r}", number)
        family, name = header.group(1) or "ip", header.group(2)
        if family not in TABLE_FAMILIES and family not in SKIPPED_FAMILIES:
            raise self.error(f"unknown table family {family!r}", number)
        name = unquote(name)
        state = self.tables.get((family, name))
        if state is None:
            fam: TableFamily = TABLE_FAMILIES.get(family, "inet")  # a skipped family's table is never returned
            table = Table(backend="nftables", family=fam, name=name)
            state = _TableState(table, skip=family in SKIPPED_FAMILIES, lazy=self.lazy, source=self.source)
            self.tables[(family, name)] = state
        self.table = state

    def _in_table(self, line: str, number: int) -> None:
        if line == "}":
            self.table = None
            return
        if not line.endswith("{"):
            if not line.startswith(("flags ", "comment ")):
                raise self.error(f"expected a chain, set or map block, found {line[:60]!r}", number)
            return
        kind = line.split(None, 1)[0]
        name = unquote(line[len(kind) : -1].strip())
        if not name:
            raise self.error(f"{kind} block without a name", number)
        if kind == "chain":
            assert self.table is not None
            chains = self.table.table.chains
            self.chain = chains.setdefault(name, Chain(name=name))
        else:  # set, map, flowtable, counter, quota, ct helper ... : only sets and maps are read
            self.block, self.depth = (kind, name), 0
            if kind in ("set", "map"):
                self.element_lines = []

    def _in_chain(self, line: str, number: int) -> None:
        assert self.chain is not None and self.table is not None
        if line == "}":
            self.chain = None
        elif line.startswith("type "):
            self._base_chain(line, number)
        elif line.endswith("{"):
            raise self.error(f"unexpected block inside chain {self.chain.name}: {line[:60]!r}", number)
        elif line.startswith(("policy ", "devices ")) or (line.startswith('comment "') and line.count('"') == 2):
            return  # chain properties
        elif not self.table.skip:
            state, name = self.table, self.chain.name
            position = state.counts.get(name, 0) + 1
            state.counts[name] = position
            may_dnat = self.lazy and ("dnat" in line or "redirect" in line)  # else `may_dnat` sees the records
            self.chain.defer((position, line, number), state.parse, may_dnat, line_dports)

    def _base_chain(self, line: str, number: int) -> None:
        """`type nat hook prerouting priority dstnat; policy accept;`."""
        assert self.chain is not None
        header = _BASE_CHAIN.fullmatch(line)
        if header is None:
            raise self.error(f"malformed base chain header: {line[:60]!r}", number)
        self.chain.kind, self.chain.hook, priority, self.chain.policy = header.groups()
        self.chain.priority = priority.strip()

    def _in_block(self, line: str, number: int) -> None:
        assert self.block is not None and self.table is not None
        kind, name = self.block
        if line == "}" and self.depth == 0:
            if kind in ("set", "map"):
                self.table.sets[name] = set_elements(" ".join(self.element_lines))
            self.block = None
        elif line == "}" or line.endswith("{"):
            self.depth += 1 if line.endswith("{") else -1
        elif kind in ("set", "map") and line.startswith("elements = {"):
            self.elements = []
            self._continue_elements(line[len("elements = {") :])

    def _continue_elements(self, line: str) -> None:
        """Collect a (possibly multi-line) `elements = { ... }` up to its closing brace."""
        assert self.elements is not None
        closed = line.endswith("}") and _balanced(line)
        self.elements.append(line[:-1] if closed else line)
        if closed:
            self.element_lines.extend(self.elements)
            self.elements = None


def _balanced(line: str) -> bool:
    """True if the `}` ending `line` is outside a quoted string."""
    return line.count('"') % 2 == 0


def _strip_comment(raw: str) -> str:
    """Drop a `#` comment (`# handle 5`, `# Warning: ...`) unless the `#` is inside a quoted string."""
    cut = raw.find("#")
    if cut < 0:
        return raw
    if '"' in raw[:cut]:
        quoted = False
        for i, char in enumerate(raw):
            if char == '"':
                quoted = not quoted
            elif char == "#" and not quoted:
                return raw[:i]
        return raw
    return raw[:cut]
