"""Parse `nft -j list ruleset` / `nft -j list table` (libnftables JSON schema) into portscope's tables.

Each rule's expressions are rendered the way `nft list` prints them (`tcp dport 8080`, `iifname
!= "br-x"`, `dnat ip to 10.0.0.2:80`) and cut into the same terms the text reader makes, so
`nft_statements` gives the same records for either form. The rendering is also `Rule.text`.
JSON carries no line numbers: `Rule.line` is None, and a malformed object is reported by its
index (`nftables[7]`) with line None.

nft prints one line, `{"nftables": [{...}, {"rule": {"family": ..., "table": ..., "chain": ...}}]}`:
it is cut at its top-level objects and only those that are not rules are decoded at once. A rule
of the shape engines write thousands of times is read straight from its text; the others are
decoded when their chain is read. Input not laid out so is decoded whole. Without `lazy`, every
rule is read before returning, and on any fault the text is decoded whole again, so a dump's
error is reported as it always was. With `lazy=True` (nft's own output) a chain's rules wait until
`Chain.rules` is first used, and a rule that cannot be read is kept as an "unparsed" record.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from portscope.core.errors import ParseError
from portscope.core.model import Chain, PortRange, Rule, Table
from portscope.core.rules.nft_json_expr import render, statement_term
from portscope.core.rules.nft_json_fast import (
    JSON_STRING,
    PORT_GROUP,
    PORT_OP_GROUP,
    RAW_FAST,
    raw_fast_match,
    raw_fast_rule,
)
from portscope.core.rules.nft_statements import (
    SKIPPED_FAMILIES,
    TABLE_FAMILIES,
    Comment,
    RuleSite,
    build_rules,
    gc_paused,
    priority_name,
    unparsed_rule,
)

__all__ = ["parse_nft_json", "raw_fast_rule", "render", "statement_term"]


def parse_nft_json(text: str, source: str = "nft-json", lazy: bool = False) -> list[Table]:
    """Parse nft's JSON listing; raise ParseError on input that is not one.

    `lazy=False` (dumps, tests): every rule is translated before returning. `lazy=True` (nft's own
    output): a chain's rules are translated when `Chain.rules` is first used, and a rule that cannot
    be translated (even one whose JSON is broken) is kept as an "unparsed" record instead of failing
    the read. Tables, chains, sets and maps are checked either way.
    """
    cut = _cut(text)
    if cut is not None:
        try:
            return _read_cut(cut, text, source, lazy)
        except Exception:
            if lazy:
                raise  # a ParseError about a table or chain, as the decoded document would give
            # A dump with a fault: decoded whole below, it is reported exactly as it always was.
    with gc_paused():  # and the decoded objects are let go before the collector runs again
        items = _load(text, source)
        reader = _Reader(source, _nft_version(items), lazy)
        try:
            for index, item in enumerate(items):
                reader.declare(index, item)
            for index, item in enumerate(items):
                reader.rule(index, item)
            del items
            if not lazy:
                for table in reader.tables():
                    for chain in table.chains.values():
                        try:
                            _ = chain.rules
                        except ValueError as exc:  # a rule no nft prints (`dnat to 12345:x`)
                            where = f"a rule of chain {chain.name} in table {table.name}"
                            raise ParseError(f"{where}: {exc}", None, source) from None
        except RecursionError:
            raise ParseError("JSON nested too deeply to be an nft ruleset", None, source) from None
    return reader.tables()


def _load(text: str, source: str) -> list[Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc.msg}", exc.lineno, source) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer too long to convert
        raise ParseError(f"not usable JSON: {exc}", None, source) from None
    items = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ParseError('expected an object with an "nftables" list', 1, source)
    return items


def _nft_version(items: list[Any]) -> tuple[int, ...] | None:
    """nft's version from the `metainfo` object, e.g. (1, 0, 6); None if absent."""
    for item in items:
        meta = item.get("metainfo") if isinstance(item, dict) else None
        version = meta.get("version") if isinstance(meta, dict) else None
        if isinstance(version, str):
            parts = version.split(".")
            if all(p.isdigit() for p in parts):
                return tuple(int(p) for p in parts)
    return None


# --- nft's own output, cut at its top-level objects ---------------------------------------------

_HEAD = re.compile(r'[ \t\r\n]*\{"nftables": \[')  # JSON's whitespace only
# nft prints every top-level object as `{"KIND": {"family": ...`. A table, chain or rule is never
# nested, so `, {"chain": {` starts one whatever its key order; other kinds are told apart from the
# statements inside rules by their "family" (of those, only NAT-like statements start with one).
# Cutting where no object starts is safe: the pieces do not decode, and the text is decoded whole.
# A rule's head names its place, so its JSON can wait, undecoded, until its chain is used.
_NESTED_WITH_FAMILY = frozenset({"dnat", "snat", "masquerade", "redirect", "tproxy", "fwd", "dup"})
_NEXT_ITEM = re.compile(r', \{"(?:(rule|table|chain)": \{"|([a-z][a-z ]*)": \{"family": ")')
_S = JSON_STRING
_RULE_HEAD = re.compile(rf'\{{"rule": \{{"family": "({_S})", "table": "({_S})", "chain": "({_S})", ')


class _Run(NamedTuple):
    """Consecutive rules of one chain, undecoded: `spans` is [start, end, start, end, ...] in the text."""

    first: int  # the document index of the first
    place: tuple[str, str, str]  # family, table, chain as their heads name them
    spans: list[int]


class _Cut(NamedTuple):
    others: list[tuple[int, Any]]  # the other top-level objects, decoded, with their index
    runs: list[_Run]


def _cut(text: str) -> _Cut | None:
    """Cut nft's output at its top-level objects and decode all but the rules; None if it is not laid out so."""
    head = _HEAD.match(text)
    stop = len(text)
    while stop and text[stop - 1] in " \t\r\n":
        stop -= 1
    if head is None or not text.startswith("]}", stop - 2) or stop - 2 <= head.end():
        return None
    stop -= 2
    runs: list[_Run] = []
    # The other objects' JSON (decoded together below), kind and index.
    pieces: list[str] = []
    kinds: list[str | None] = []
    indexes: list[int] = []
    spans: list[int] = []
    # The object being read: where it starts, its kind (None: the first, not checked) and, for a rule
    # left undecoded, its head (`{"rule": {"family": "ip", "table": "t", "chain": "c", `).
    start, kind, rule_head = head.end(), None, None
    index = 0
    for found in itertools.chain(_NEXT_ITEM.finditer(text, start, stop), (None,)):
        if found is None:
            end, next_kind = stop, None
        else:
            next_kind = found[1] or found[2]
            if next_kind in _NESTED_WITH_FAMILY:  # a statement inside a rule
                continue
            end = found.start()
        if rule_head is not None and text.endswith("]}}", start, end):  # its "expr" list closes it, as nft prints
            spans += (start, end)
        else:  # decoded now with the others: were an object the cut missed in it, they would not decode
            if rule_head is not None:
                if not spans:
                    runs.pop()
                rule_head = None
            pieces.append(text[start:end])
            kinds.append(kind)
            indexes.append(index)
        index += 1
        start, kind = end + 2, next_kind
        if kind != "rule":
            rule_head = None
        elif rule_head is None or not text.startswith(rule_head, start):  # not the next rule of the same chain
            place = _RULE_HEAD.match(text, start, stop)
            rule_head = None if place is None else place[0]
            if place is not None:
                spans = []
                runs.append(_Run(index, (place[1], place[2], place[3]), spans))
    try:
        decoded = json.loads("[" + ",".join(pieces) + "]")
    except (ValueError, RecursionError):
        return None
    if len(decoded) != len(pieces) or any(
        kind is not None and not (isinstance(item, dict) and kind in item)
        for kind, item in zip(kinds, decoded, strict=True)
    ):
        return None
    return _Cut(list(zip(indexes, decoded, strict=True)), runs)


def _may_dnat(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] may hold a dnat or redirect statement (`\\u`: a key spelt with escapes)."""
    find = text.find
    return find('"dnat"', start, end) >= 0 or find('"redirect"', start, end) >= 0 or find("\\u", start, end) >= 0


def _read_cut(cut: _Cut, text: str, source: str, lazy: bool) -> list[Table]:
    """Tables from a cut document. Not lazy: every rule is translated now, and any fault raises."""
    reader = _Reader(source, _nft_version([item for _, item in cut.others]), lazy, text)
    try:
        for index, item in cut.others:
            reader.declare(index, item)
        decoded_rules = [(i, item) for i, item in cut.others if isinstance(item, dict) and "rule" in item]
        if not decoded_rules:
            for run in cut.runs:
                reader.raw_run(run)
        else:  # a rule whose head is not as nft prints it was decoded: queue all in the document's order
            entries: list[tuple[int, Any]] = list(decoded_rules)
            for run in cut.runs:
                spans = run.spans
                entries += (
                    (run.first + k, _Run(run.first + k, run.place, spans[2 * k : 2 * k + 2]))
                    for k in range(len(spans) // 2)
                )
            for index, entry in sorted(entries, key=lambda e: e[0]):
                if isinstance(entry, _Run):
                    reader.raw_run(entry)
                else:
                    reader.rule(index, entry)
        if not lazy:
            for table in reader.tables():
                for chain in table.chains.values():
                    _ = chain.rules
    except RecursionError:
        raise ParseError("JSON nested too deeply to be an nft ruleset", None, source) from None
    return reader.tables()


@dataclass(slots=True, eq=False)
class _Owner:
    """A table being read, its named sets and maps (name -> element texts), and how to read its rules.

    A deferred rule is `(position, body)` (decoded) or `(position, start, end)` (undecoded, in `text`).
    """

    keyword: str  # the nft family: "ip", "ip6", "inet"
    table: Table
    lazy: bool
    text: str
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False)
    positions: dict[str, int] = field(default_factory=dict, init=False)  # rules seen per chain

    def defer(self, chain_name: str, item: tuple[Any, ...], may_dnat: bool) -> None:
        """Queue `item` (without its position) on the chain."""
        chains = self.table.chains
        chain = chains.get(chain_name)
        if chain is None:
            chain = chains[chain_name] = Chain(name=chain_name)
        position = self.positions.get(chain_name, 0) + 1
        self.positions[chain_name] = position
        chain.defer((position, *item), self.parse, may_dnat, self.span_dports)

    def defer_run(self, chain_name: str, spans: list[int], may_dnat: bool) -> None:
        """Queue undecoded rules (`spans` is [start, end, start, end, ...] in `text`) on the chain."""
        chains = self.table.chains
        chain = chains.get(chain_name)
        if chain is None:
            chain = chains[chain_name] = Chain(name=chain_name)
        position = self.positions.get(chain_name, 0)
        parse, defer, ports = self.parse, chain.defer, self.span_dports
        for k in range(0, len(spans), 2):
            position += 1
            defer((position, spans[k], spans[k + 1]), parse, may_dnat, ports)
        self.positions[chain_name] = position

    def span_dports(self, item: tuple[Any, ...]) -> tuple[PortRange, ...] | None:
        """The port match of an undecoded rule, for `Chain.select`: its `tcp dport N` when the whole rule has the
        common engine shape (`RAW_FAST`); else None. Such a rule matches only that port in the kernel, even where
        the rest of it cannot be read (it is then kept as "unparsed" when parsed, and is not when left out)."""
        if len(item) != 3:
            return None
        found = RAW_FAST.fullmatch(self.text, item[1], item[2])
        if found is None:
            return None
        op, port = found.group(PORT_OP_GROUP), found.group(PORT_GROUP)
        if op != "==" or port is None or int(port) > 65535:
            return None
        return (PortRange(int(port), int(port)),)

    def parse(self, chain: Chain, items: list[tuple[Any, ...]]) -> list[Rule]:
        """Records of a chain's deferred items, in order."""
        family, table, name, text = self.table.family, self.table.name, chain.name, self.text
        fullmatch = RAW_FAST.fullmatch
        done: list[Rule | list[Rule] | None] = []  # per item: its record, its records, or None (still to decode)
        undecoded: list[int] = []
        with gc_paused():
            for item in items:
                if len(item) == 2:
                    done.append(self._records(name, item[0], item[1], None))
                    continue
                found = fullmatch(text, item[1], item[2])
                record = None
                if found is not None:
                    try:
                        record = raw_fast_match(
                            found,
                            RuleSite(family=family, table=table, chain=name, position=item[0], text="", line=None),
                        )
                    except Exception:  # the general path decides (and reports) instead
                        record = None
                if record is None:
                    undecoded.append(len(done))
                done.append(record)
            if undecoded:
                self._decode(name, [items[slot] for slot in undecoded], undecoded, done)
            out: list[Rule] = []
            for entry in done:
                if isinstance(entry, list):
                    out.extend(entry)
                elif entry is not None:
                    out.append(entry)
        return out

    def _decode(self, chain: str, items: list[tuple[Any, ...]], slots: list[int], done: list) -> None:
        """Fill `done[slot]` with the records of undecoded rules."""
        spans = [self.text[start:end] for _, start, end in items]
        decoded = _decode_spans(spans)
        for slot, (position, _, _), span, value in zip(slots, items, spans, decoded, strict=True):
            done[slot] = self._records(chain, position, self._body(chain, value), span)

    def _body(self, chain: str, value: Any) -> dict[str, Any] | Exception:
        """The body of a decoded `{"rule": ...}` object, or why it is not this chain's rule."""
        if isinstance(value, Exception):
            return value
        body = value.get("rule") if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(body, dict):
            return ValueError("not a rule object")
        if (body.get("family"), body.get("table"), body.get("chain")) != (self.keyword, self.table.name, chain):
            return ValueError("the rule names another family, table or chain than its head")
        return body

    def _records(self, chain: str, position: int, body: dict[str, Any] | Exception, span: str | None) -> list[Rule]:
        """The records of one rule; in lazy mode one "unparsed" record when it cannot be read."""
        try:
            if isinstance(body, Exception):
                raise body
            return self._translate(chain, position, body)
        except Exception as exc:  # a translator bug must not cost the whole read of the kernel's rules
            if not self.lazy:
                raise
            text = span if span is not None else _dump(body)
            return [
                unparsed_rule(
                    RuleSite(
                        family=self.table.family,
                        table=self.table.name,
                        chain=chain,
                        position=position,
                        text=text,
                        line=None,
                    ),
                    exc,
                )
            ]

    def _translate(self, chain: str, position: int, body: dict[str, Any]) -> list[Rule]:
        expressions = body.get("expr")
        if not isinstance(expressions, list):
            raise ValueError('"expr" must be a list')
        comment = body.get("comment")
        terms = [statement_term(e) for e in expressions]
        if isinstance(comment, str):
            terms.append(Comment(comment, f'comment "{comment}"'))
        text = " ".join(t.text for t in terms)
        return build_rules(
            terms,
            RuleSite(
                family=self.table.family, table=self.table.name, chain=chain, position=position, text=text, line=None
            ),
            self.sets,
        )


def _decode_spans(spans: list[str]) -> list[Any]:
    """Each span's object (one json.loads for all when they are clean), or the exception it raised."""
    try:
        decoded = json.loads("[" + ",".join(spans) + "]")
    except (ValueError, RecursionError):
        decoded = None
    if decoded is not None and len(decoded) == len(spans):
        return decoded
    return [_loads(span) for span in spans]


def _loads(span: str) -> Any:
    try:
        return json.loads(span)
    except (ValueError, RecursionError) as exc:
        return exc


def _dump(body: Any) -> str:
    """A rule's JSON as its text, when it cannot be rendered as nft prints it."""
    try:
        return json.dumps(body)
    except (ValueError, TypeError, RecursionError):
        return "rule"


class _Reader:
    """Collects tables, chains, sets and rules from the list of JSON objects."""

    def __init__(self, source: str, version: tuple[int, ...] | None, lazy: bool = False, text: str = "") -> None:
        self.source = source
        self.lazy = lazy
        self.text = text  # the document, for undecoded rules
        # nft < 1.0.8 names dstnat/srcnat only on prerouting/postrouting: print priorities as it would.
        self.nat_names_on_io = version is None or version >= (1, 0, 8)
        self.by_key: dict[tuple[str, str], _Owner] = {}

    def tables(self) -> list[Table]:
        return [owner.table for owner in self.by_key.values()]

    def error(self, index: int, message: str) -> ParseError:
        return ParseError(f"nftables[{index}]: {message}", None, self.source)

    def _body(self, index: int, item: Any, kinds: tuple[str, ...]) -> tuple[str, dict[str, Any]] | None:
        """(kind, body) of an object of one of `kinds`; None for other objects."""
        if not isinstance(item, dict):
            raise self.error(index, "expected an object")
        for kind in kinds:
            if kind in item:
                body = item[kind]
                if not isinstance(body, dict):
                    raise self.error(index, f'"{kind}" must be an object')
                return kind, body
        return None

    def _string(self, index: int, body: dict[str, Any], key: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise self.error(index, f'"{key}" must be a non-empty string')
        return value

    def _table(self, index: int, body: dict[str, Any], name_key: str) -> _Owner | None:
        """The table an object belongs to (made on first sight); None for families not read."""
        family = self._string(index, body, "family")
        if family in SKIPPED_FAMILIES:
            return None
        if family not in TABLE_FAMILIES:
            raise self.error(index, f"unknown table family {family!r}")
        name = self._string(index, body, name_key)
        key = (family, name)
        if key not in self.by_key:
            table = Table(backend="nftables", family=TABLE_FAMILIES[family], name=name)
            self.by_key[key] = _Owner(family, table, self.lazy, self.text)
        return self.by_key[key]

    def declare(self, index: int, item: Any) -> None:
        """Read a table, chain, set or map object; others (rules, counters, flowtables ...) wait or are skipped."""
        found = self._body(index, item, ("table", "chain", "set", "map"))
        if found is None:
            return
        kind, body = found
        owner = self._table(index, body, "name" if kind == "table" else "table")
        if owner is None or kind == "table":
            return
        name = self._string(index, body, "name")
        if kind == "chain":
            self._chain(owner.table, name, body)
        else:
            owner.sets[name] = _elements(body)

    def _chain(self, table: Table, name: str, body: dict[str, Any]) -> None:
        chain = table.chains.setdefault(name, Chain(name=name))
        hook = body.get("hook")
        if not isinstance(hook, str):
            return
        chain.hook = hook
        chain.kind = body["type"] if isinstance(body.get("type"), str) else None
        chain.policy = body["policy"] if isinstance(body.get("policy"), str) else None
        prio = body.get("prio")
        if isinstance(prio, int) and not isinstance(prio, bool):
            chain.priority = priority_name(prio, hook, self.nat_names_on_io)
        elif isinstance(prio, str):
            chain.priority = prio

    def rule(self, index: int, item: Any) -> None:
        """Queue a rule object on its chain (translated when the chain's rules are first used)."""
        found = self._body(index, item, ("rule",))
        if found is None:
            return
        body = found[1]
        owner = self._table(index, body, "table")
        if owner is None:
            return
        chain_name = self._string(index, body, "chain")
        expressions = body.get("expr")
        if not self.lazy:
            if not isinstance(expressions, list):
                raise self.error(index, '"expr" must be a list')
            owner.defer(chain_name, (body,), False)  # translated before returning: `may_dnat` sees the records
            return
        may_dnat = isinstance(expressions, list) and any(
            isinstance(e, dict) and ("dnat" in e or "redirect" in e) for e in expressions
        )
        owner.defer(chain_name, (body,), may_dnat)

    def _check_json(self, spans: list[int]) -> None:
        """Raise if an undecoded rule is not one JSON object (a dump's rules of a family not read)."""
        pieces = [self.text[spans[k] : spans[k + 1]] for k in range(0, len(spans), 2)]
        for value in _decode_spans(pieces):
            if isinstance(value, Exception):
                raise value

    def raw_run(self, run: _Run) -> None:
        """Queue a run of undecoded rules on their chain, checking their place as `rule` would."""
        family, table, chain_name = run.place
        owner = self.by_key.get((family, table)) or self._table(run.first, {"family": family, "table": table}, "table")
        if owner is None:  # a family not read; in a dump, its rules must still be JSON
            if not self.lazy:
                self._check_json(run.spans)
            return
        if not chain_name:
            raise self.error(run.first, '"chain" must be a non-empty string')
        may_dnat = self.lazy and _may_dnat(self.text, run.spans[0], run.spans[-1])  # else the records tell
        owner.defer_run(chain_name, run.spans, may_dnat)


def _elements(body: dict[str, Any]) -> tuple[str, ...]:
    """A set's or map's elements as nft prints them (a map element as `KEY : DATA`)."""
    elements = body.get("elem")
    if not isinstance(elements, list):
        return ()
    key_hint = _type_hint(body.get("type"))
    data_hint = _type_hint(body.get("map"))
    if "map" not in body:
        return tuple(render(e, key_hint) for e in elements)
    return tuple(_map_element(e, key_hint, data_hint) for e in elements)


def _map_element(element: Any, key_hint: str, data_hint: str) -> str:
    if isinstance(element, list) and len(element) == 2:
        return f"{render(element[0], key_hint)} : {render(element[1], data_hint)}"
    return render(element, key_hint)


def _type_hint(set_type: Any) -> str:
    """How to print values of a set type: "ifname" (quoted strings), "mark" (hex) or plain."""
    if set_type == "ifname":
        return "ifname"
    if set_type == "mark":
        return "mark"
    return ""
