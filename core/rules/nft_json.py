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
from typing import Any, NamedTuple

from core.errors import ParseError
from core.model import Chain, Family, NatTarget, Rule, Table, Verdict
from core.rules.nft_statements import (
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
    fast_address,
    fast_dnat,
    fast_dport,
    fast_iface,
    fast_record,
    gc_paused,
    priority_name,
    unparsed_rule,
)

_UNQUALIFIED_META = frozenset({"iifname", "oifname", "iif", "oif", "iifgroup", "oifgroup"})
_IFNAME_KEYS = frozenset({"iifname", "oifname", "iif", "oif"})
_MARK_KEYS = frozenset({"meta mark", "ct mark"})
_BINOPS = frozenset({"&", "|", "^", "<<", ">>"})
_SILENT_OPS = frozenset({"==", "in"})  # nft prints no operator for these (unless the left side is a binop)


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
                        _ = chain.rules
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
_STRING = r'[^"\\\x00-\x1f]*'  # the inside of a JSON string without escapes: the text is the value
_NEXT_ITEM = re.compile(r', \{"(?:(rule|table|chain)": \{"|([a-z][a-z ]*)": \{"family": ")')
_RULE_HEAD = re.compile(rf'\{{"rule": \{{"family": "({_STRING})", "table": "({_STRING})", "chain": "({_STRING})", ')


class _Run(NamedTuple):
    """Consecutive rules of one chain, undecoded: `spans` is [start, end, start, end, ...] in the text."""

    index: int  # the document index of the first
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
    pieces, kinds, indexes = [], [], []  # the other objects' JSON (decoded together below), kind and index
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
                runs.append(_Run(index, place.group(1, 2, 3), spans))
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
                    (run.index + k, _Run(run.index + k, run.place, spans[2 * k : 2 * k + 2]))
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


class _Owner:
    """A table being read, its named sets and maps (name -> element texts), and how to read its rules.

    A deferred rule is `(position, body)` (decoded) or `(position, start, end)` (undecoded, in `text`).
    """

    __slots__ = ("keyword", "lazy", "positions", "sets", "table", "text")

    def __init__(self, keyword: str, table: Table, lazy: bool, text: str) -> None:
        self.keyword = keyword  # the nft family: "ip", "ip6", "inet"
        self.table = table
        self.sets: dict[str, tuple[str, ...]] = {}
        self.positions: dict[str, int] = {}  # rules seen per chain
        self.lazy = lazy
        self.text = text

    def defer(self, chain_name: str, item: tuple[Any, ...], may_dnat: bool) -> None:
        """Queue `item` (without its position) on the chain."""
        chains = self.table.chains
        chain = chains.get(chain_name)
        if chain is None:
            chain = chains[chain_name] = Chain(name=chain_name)
        position = self.positions.get(chain_name, 0) + 1
        self.positions[chain_name] = position
        chain.defer((position, *item), self.parse, may_dnat)

    def defer_run(self, chain_name: str, spans: list[int], may_dnat: bool) -> None:
        """Queue undecoded rules (`spans` is [start, end, start, end, ...] in `text`) on the chain."""
        chains = self.table.chains
        chain = chains.get(chain_name)
        if chain is None:
            chain = chains[chain_name] = Chain(name=chain_name)
        position = self.positions.get(chain_name, 0)
        parse, defer = self.parse, chain.defer
        for k in range(0, len(spans), 2):
            position += 1
            defer((position, spans[k], spans[k + 1]), parse, may_dnat)
        self.positions[chain_name] = position

    def parse(self, chain: Chain, items: list[tuple[Any, ...]]) -> list[Rule]:
        """Records of a chain's deferred items, in order."""
        family, table, name, text = self.table.family, self.table.name, chain.name, self.text
        fullmatch = _RAW_FAST.fullmatch
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
                        record = _raw_fast_rule(found, RuleSite(family, table, name, item[0], "", None))
                    except Exception:  # the general path decides (and reports) instead
                        record = None
                if record is None:
                    undecoded.append(len(done))
                done.append(record)
            if undecoded:
                self._decode(name, [items[slot] for slot in undecoded], undecoded, done)
            out: list[Rule] = []
            for entry in done:
                if entry.__class__ is list:
                    out.extend(entry)  # type: ignore[arg-type]
                else:
                    out.append(entry)  # type: ignore[arg-type]
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
            return [unparsed_rule(RuleSite(self.table.family, self.table.name, chain, position, text, None), exc)]

    def _translate(self, chain: str, position: int, body: dict[str, Any]) -> list[Rule]:
        expressions = body.get("expr")
        if not isinstance(expressions, list):
            raise ValueError('"expr" must be a list')
        site = RuleSite(self.table.family, self.table.name, chain, position, "", None)
        comment = body.get("comment")
        found = fast_rule(expressions, comment, site)
        if found is not None:
            return [found]
        terms = [statement_term(e) for e in expressions]
        if isinstance(comment, str):
            terms.append(Comment(comment, f'comment "{comment}"'))
        text = " ".join(t.text for t in terms)
        return build_rules(terms, RuleSite(self.table.family, self.table.name, chain, position, text, None), self.sets)


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
        owner = self.by_key.get((family, table)) or self._table(run.index, {"family": family, "table": table}, "table")
        if owner is None:  # a family not read; in a dump, its rules must still be JSON
            if not self.lazy:
                self._check_json(run.spans)
            return
        if not chain_name:
            raise self.error(run.index, '"chain" must be a non-empty string')
        may_dnat = self.lazy and _may_dnat(self.text, run.spans[0], run.spans[-1])  # else the records tell
        owner.defer_run(chain_name, run.spans, may_dnat)


# --- the common engine shape -------------------------------------------------------------------
# `iifname != "br-x" ip daddr 127.0.0.1 tcp dport 8080 counter dnat to 192.0.2.2:80 comment "DNAT"` and
# its kin (a jump, accept, drop, return or masquerade instead of the dnat) are recorded without terms,
# from decoded JSON (`fast_rule`) or straight from nft's text of the rule (`_RAW_FAST`). Both give
# exactly what `build_rules` gives (tests compare them), or None when the general path must decide.

_FAST_VERDICTS = frozenset({"accept", "drop", "return"})
_FAST_ADDR_PROTOCOLS = frozenset({"ip", "ip6"})
_FAST_ADDR_FIELDS = frozenset({"daddr", "saddr"})
_FAST_PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
_NUMBER = r"(?:0|[1-9][0-9]{0,19})"  # a JSON integer json.loads takes (longer ones are decoded, and refused)
_ADDRESS_MATCH = (
    rf'(?:\{{"match": \{{"op": "(==|!=)", "left": \{{"payload": \{{"protocol": "(ip6?)", "field": "([ds]addr)"\}}\}}, '
    rf'"right": "({_STRING})"\}}\}}, )?'
)
_RAW_FAST = re.compile(
    rf'\{{"rule": \{{"family": "{_STRING}", "table": "{_STRING}", "chain": "{_STRING}", "handle": {_NUMBER}, '
    rf'(?:"comment": "({_STRING})", )?"expr": \['
    rf'(?:\{{"match": \{{"op": "(==|!=)", "left": \{{"meta": \{{"key": "(iifname|oifname)"\}}\}}, '
    rf'"right": "({_STRING})"\}}\}}, )?'
    rf"{_ADDRESS_MATCH}{_ADDRESS_MATCH}"
    rf'(?:\{{"match": \{{"op": "(==|!=)", "left": \{{"payload": \{{"protocol": "(tcp|udp|sctp)", '
    rf'"field": "dport"\}}\}}, "right": ({_NUMBER})\}}\}}, )?'
    rf'(\{{"counter": \{{"packets": {_NUMBER}, "bytes": {_NUMBER}\}}\}}, )?'
    rf'(?:\{{"dnat": \{{(?:"family": "(ip6?)", )?"addr": "({_STRING})"(?:, "port": ({_NUMBER}))?\}}\}}'
    rf'|\{{"(jump|goto)": \{{"target": "({_STRING})"\}}\}}'
    rf'|\{{"(accept|drop|return|masquerade)": null\}})'
    r"\]\}\}"
)


def raw_fast_rule(rule_json: str, site: RuleSite) -> Rule | None:
    """The record of a rule of the common engine shape read straight from nft's JSON of it
    (`{"rule": {...}}`, laid out as nft prints it), or None to decode it and use `fast_rule` or the
    general path. `site.text` is ignored: the text is rendered here."""
    found = _RAW_FAST.fullmatch(rule_json)
    return None if found is None else _raw_fast_rule(found, site)


def _raw_fast_rule(found: re.Match[str], site: RuleSite) -> Rule | None:
    """The record of a rule `_RAW_FAST` matched, or None when the general path must decide."""
    groups = found.groups()
    comment, iface_op, iface, name = groups[:4]
    port_op, protocol, port, counter, nat_family, addr, nat_port, jump_kind, target, word = groups[12:]
    parts: list[str] = []
    fields: dict[str, object] = {}
    if iface is not None and not _add_iface(fields, parts, iface, iface_op == "!=", name):
        return None
    for at in (4, 8):
        if groups[at + 1] is not None:
            op, ip, field, network = groups[at : at + 4]
            if not _add_address(fields, parts, ip, field, op == "!=", network):
                return None
    if protocol is not None and not _add_dport(fields, parts, protocol, port_op == "!=", port):
        return None
    if counter is not None:
        parts.append("counter")
    nat = found_family = None
    if addr is not None:
        found_nat = _add_dnat(parts, nat_family, addr, nat_port)
        if found_nat is None:
            return None
        verdict: Verdict = "dnat"
        nat, found_family = found_nat
    elif jump_kind is not None:
        verdict = jump_kind
        parts.append(f"{jump_kind} {target}")
    else:
        verdict = word
        parts.append(word)
    return _fast_finish(site, parts, fields, verdict, target, nat, found_family, comment)


def fast_rule(expressions: list[Any], comment: Any, site: RuleSite) -> Rule | None:
    """The record of a rule of the common engine shape from its decoded "expr" list and "comment", or None.

    The shape: `iifname|oifname`, `ip|ip6 daddr|saddr` and `tcp|udp|sctp dport` matches against one
    value (`==` or `!=`), counters, then `dnat [ip|ip6] to ADDR[:PORT]`, a jump or goto, accept, drop,
    return or masquerade. Gives exactly what `build_rules` gives for the same rule (`site.text` is
    ignored: the text is rendered here), or None when the general path must decide.
    """
    parts: list[str] = []
    fields: dict[str, object] = {}
    verdict: Verdict | None = None
    jump = nat = nat_family = None
    for stmt in expressions:
        if verdict is not None or stmt.__class__ is not dict or len(stmt) != 1:
            return None
        ((kind, body),) = stmt.items()
        if kind == "match":
            if not _fast_match(body, fields, parts):
                return None
        elif kind == "counter":
            if body.__class__ is str:
                return None
            parts.append("counter")
        elif kind in _FAST_VERDICTS:
            verdict = kind
            parts.append(kind)
        elif kind == "jump" or kind == "goto":
            jump = body.get("target") if body.__class__ is dict else None
            if jump.__class__ is not str:
                return None
            verdict = kind
            parts.append(f"{kind} {jump}")
        elif kind == "dnat":
            found = _fast_dnat(body, parts)
            if found is None:
                return None
            verdict = "dnat"
            nat, nat_family = found
        elif kind == "masquerade" and body is None:
            verdict = "masquerade"
            parts.append("masquerade")
        else:
            return None
    if verdict is None:
        return None
    return _fast_finish(
        site, parts, fields, verdict, jump, nat, nat_family, comment if comment.__class__ is str else None
    )


def _fast_finish(
    site: RuleSite,
    parts: list[str],
    fields: dict[str, object],
    verdict: Verdict,
    jump: str | None,
    nat: NatTarget | None,
    nat_family: Family | None,
    comment: str | None,
) -> Rule:
    if comment is not None:
        parts.append(f'comment "{comment}"')
    return fast_record(site, " ".join(parts), fields, verdict, jump, nat, nat_family, comment)


def _fast_match(body: Any, fields: dict[str, object], parts: list[str]) -> bool:
    """One `{"match": ...}` of the common shape into `fields` and `parts`; False if it is not one."""
    if body.__class__ is not dict:
        return False
    op = body.get("op", "==")
    if op != "==" and op != "!=":
        return False
    negated = op == "!="
    left, right = body.get("left"), body.get("right")
    if left.__class__ is not dict or len(left) != 1:
        return False
    selector = left.get("payload")
    if selector is not None:
        if selector.__class__ is not dict:
            return False
        protocol, field = selector.get("protocol"), selector.get("field")
        if protocol.__class__ is not str or field.__class__ is not str:
            return False
        if field == "dport" and protocol in _FAST_PORT_PROTOCOLS:
            port = _fast_port(right)
            return port is not None and _add_dport(fields, parts, protocol, negated, port)
        if field in _FAST_ADDR_FIELDS and protocol in _FAST_ADDR_PROTOCOLS:
            return right.__class__ is str and _add_address(fields, parts, protocol, field, negated, right)
        return False
    selector = left.get("meta")
    key = selector.get("key") if selector.__class__ is dict else None
    if key != "iifname" and key != "oifname":
        return False
    return right.__class__ is str and _add_iface(fields, parts, key, negated, right)


def _fast_port(right: Any) -> str | None:
    """A port or `{"range": [first, last]}` as nft prints it; None for anything else."""
    if right.__class__ is int:
        return str(right)
    if right.__class__ is dict and len(right) == 1:
        bounds = right.get("range")
        if bounds.__class__ is list and len(bounds) == 2 and bounds[0].__class__ is int and bounds[1].__class__ is int:
            return f"{bounds[0]}-{bounds[1]}"
    return None


def _fast_dnat(body: Any, parts: list[str]) -> tuple[NatTarget, Family | None] | None:
    """`{"dnat": {["family": "ip"|"ip6",] "addr": ADDR[, "port": PORT]}}`."""
    if body.__class__ is not dict or not body.keys() <= {"family", "addr", "port"}:
        return None
    family, addr, port = body.get("family"), body.get("addr"), body.get("port", "")
    if (family is not None and family != "ip" and family != "ip6") or addr.__class__ is not str:
        return None
    if port.__class__ is int:
        return _add_dnat(parts, family, addr, str(port))
    return _add_dnat(parts, family, addr, None) if port == "" else None


def _add_iface(fields: dict[str, object], parts: list[str], key: str, negated: bool, name: str) -> bool:
    if name.startswith("@") or not fast_iface(fields, key, negated, name):  # `@name`: a named set
        return False
    parts.append(f'{key} != "{name}"' if negated else f'{key} "{name}"')
    return True


def _add_address(fields: dict[str, object], parts: list[str], ip: str, field: str, negated: bool, network: str) -> bool:
    if not fast_address(fields, ip, field, negated, network):
        return False
    parts.append(f"{ip} {field} != {network}" if negated else f"{ip} {field} {network}")
    return True


def _add_dport(fields: dict[str, object], parts: list[str], protocol: str, negated: bool, port: str) -> bool:
    if not fast_dport(fields, protocol, negated, port):
        return False
    parts.append(f"{protocol} dport != {port}" if negated else f"{protocol} dport {port}")
    return True


def _add_dnat(
    parts: list[str], family: str | None, addr: str, port: str | None
) -> tuple[NatTarget, Family | None] | None:
    """`dnat [ip|ip6] to ADDR[:PORT]` as nft prints it from the JSON's addr and port."""
    target = addr if port is None else f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    found = fast_dnat(family, target)
    if found is not None:
        parts.append(f"dnat {family} to {target}" if family else f"dnat to {target}")
    return found


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


# --- expressions -------------------------------------------------------------------------------


def render(expr: Any, hint: str = "") -> str:
    """One JSON expression as nft prints it. `hint` is "ifname" or "mark" for values of those types."""
    if isinstance(expr, str):
        return f'"{expr}"' if hint == "ifname" and not expr.startswith("@") else expr
    if isinstance(expr, bool) or expr is None:
        return json.dumps(expr)
    if isinstance(expr, int):
        return f"0x{expr:08x}" if hint == "mark" and expr >= 0 else str(expr)
    if isinstance(expr, list):
        return ",".join(render(e, hint) for e in expr)
    if isinstance(expr, dict):
        return _render_object(expr, hint)
    return json.dumps(expr)


def _render_object(expr: dict[str, Any], hint: str) -> str:
    if len(expr) != 1:
        return _generic(expr)
    ((kind, body),) = expr.items()
    renderer = _RENDERERS.get(kind)
    if renderer is not None:
        text = renderer(body, hint)
        if text is not None:
            return text
    if kind in _BINOPS and isinstance(body, list) and len(body) == 2:
        left = render(body[0], hint)
        return f"{left} {kind} {render(body[1], hint or _hint(left))}"
    if kind in VERDICT_NAMES:
        return _verdict_text(kind, body)
    return _generic(expr)


def _generic(expr: Any) -> str:
    """A readable form for objects this module does not know: `name key value ...`."""
    if not isinstance(expr, dict):
        return render(expr)
    parts = []
    for key, value in expr.items():
        parts.append(str(key))
        if isinstance(value, dict):
            parts.extend(f"{k} {render(v)}" for k, v in value.items())
        elif value is not None:
            parts.append(render(value))
    return " ".join(parts)


def _payload(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict):
        return None
    if "protocol" in body and "field" in body:
        return f"{body['protocol']} {body['field']}"
    if {"base", "offset", "len"} <= body.keys():
        return f"@{body['base']},{body['offset']},{body['len']}"
    return None


def _meta(body: Any, hint: str) -> str | None:
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str):
        return None
    return key if key in _UNQUALIFIED_META else f"meta {key}"


def _ct(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        return None
    words = ["ct", body.get("dir"), body.get("family"), body["key"]]
    return " ".join(str(w) for w in words if w)


def _fib(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("result"), str):
        return None
    flags = body.get("flags", [])
    flags = [flags] if isinstance(flags, str) else flags if isinstance(flags, list) else []
    words = ["fib", " . ".join(str(f) for f in flags), body["result"]]
    return " ".join(w for w in words if w)


def _prefix(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or "addr" not in body or "len" not in body:
        return None
    return f"{render(body['addr'])}/{render(body['len'])}"


def _range(body: Any, hint: str) -> str | None:
    if not isinstance(body, list) or len(body) != 2:
        return None
    return f"{render(body[0], hint)}-{render(body[1], hint)}"


def _set(body: Any, hint: str) -> str | None:
    if not isinstance(body, list):
        return None
    return "{ " + ", ".join(_set_element(e, hint) for e in body) + " }"


def _set_element(element: Any, hint: str) -> str:
    if isinstance(element, list) and len(element) == 2:  # a map element [key, data]
        return f"{render(element[0], hint)} : {render(element[1])}"
    return render(element, hint)


def _concat(body: Any, hint: str) -> str | None:
    return " . ".join(render(e) for e in body) if isinstance(body, list) else None


def _elem(body: Any, hint: str) -> str | None:
    return render(body["val"], hint) if isinstance(body, dict) and "val" in body else None


def _map(body: Any, hint: str) -> str | None:
    if not isinstance(body, dict) or "key" not in body or "data" not in body:
        return None
    key = render(body["key"])
    return f"{key} map {render(body['data'], _hint(key))}"


_RENDERERS = {
    "payload": _payload,
    "meta": _meta,
    "ct": _ct,
    "fib": _fib,
    "prefix": _prefix,
    "range": _range,
    "set": _set,
    "concat": _concat,
    "elem": _elem,
    "map": _map,
}


def _hint(key: str) -> str:
    """The value hint for a printed key: quoted names for interfaces, hex for marks."""
    if key in _IFNAME_KEYS:
        return "ifname"
    if key in _MARK_KEYS or key.startswith(("meta mark ", "ct mark ")):
        return "mark"
    return ""


def _value(expr: Any, hint: str) -> Value:
    """The right-hand side of a match: an anonymous set's elements, or one value's text."""
    if isinstance(expr, dict) and len(expr) == 1 and isinstance(expr.get("set"), list):
        return tuple(_set_element(e, hint) for e in expr["set"])
    return render(expr, hint)


def _value_text(value: Value) -> str:
    return "{ " + ", ".join(value) + " }" if isinstance(value, tuple) else value


# --- statements --------------------------------------------------------------------------------


def statement_term(stmt: Any) -> Term:
    """One element of a rule's "expr" list as a term; unknown statements become conditions."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        return Note("cond", _generic(stmt))
    ((kind, body),) = stmt.items()
    if kind == "match":
        return _match(body) or Note("cond", _generic(stmt))
    if kind in VERDICT_NAMES:
        target = body.get("target") if isinstance(body, dict) and kind in ("jump", "goto") else None
        return VerdictStmt(kind, target if isinstance(target, str) else None, _verdict_text(kind, body))
    if kind in NAT_KINDS:
        return _nat(kind, body)
    builder = _STATEMENTS.get(kind)
    term = builder(body) if builder is not None else None
    return term or Note("cond", _generic(stmt))


def _match(body: Any) -> Match | None:
    if not isinstance(body, dict) or "left" not in body or "right" not in body:
        return None
    op = body.get("op", "==")
    op = op if isinstance(op, str) else "=="
    flags = _flags_mask(body["left"], body["right"], op)
    if flags is not None:
        return flags
    key = render(body["left"])
    value = _value(body["right"], _hint(key))
    binop_left = isinstance(body["left"], dict) and any(k in _BINOPS for k in body["left"])
    shown_op = "" if op in _SILENT_OPS and not binop_left else op
    text = " ".join(part for part in (key, shown_op, _value_text(value)) if part)
    return Match(key, shown_op, value, text)


def _flags_mask(left: Any, right: Any, op: str) -> Match | None:
    """`tcp flags & (syn | ack) == syn` is printed `tcp flags syn / syn,ack`."""
    if op not in _SILENT_OPS or not isinstance(left, dict) or not isinstance(left.get("&"), list):
        return None
    operands = left["&"]
    if len(operands) != 2 or render(operands[0]) != "tcp flags" or isinstance(right, dict):
        return None
    value = f"{render(right)} / {render(operands[1])}"
    return Match("tcp flags", "", value, f"tcp flags {value}")


def _verdict_text(kind: str, body: Any) -> str:
    if kind in ("jump", "goto"):
        target = body.get("target") if isinstance(body, dict) else None
        return f"{kind} {target}" if isinstance(target, str) else kind
    if kind == "reject" and isinstance(body, dict):
        reject_type, code = body.get("type"), body.get("expr")
        if reject_type == "tcp reset":
            return "reject with tcp reset"
        if isinstance(reject_type, str) and code is not None:
            return f"reject with {reject_type} {render(code)}"
    if kind == "queue" and isinstance(body, dict):
        return _generic({"queue": body})
    return kind


def _nat(kind: str, body: Any) -> NatStmt:
    """`dnat ip to 10.0.0.2:80` from {"dnat": {"family": "ip", "addr": ..., "port": ..., "flags": ...}}."""
    body = body if isinstance(body, dict) else {}
    family = body.get("family") if body.get("family") in ("ip", "ip6") else None
    addr, port = body.get("addr"), body.get("port")
    computed = (isinstance(addr, dict) and not _is_literal(addr)) or (isinstance(port, dict) and not _is_literal(port))
    addr_text = render(addr) if addr is not None else ""
    port_text = render(port) if port is not None else ""
    if ":" in addr_text and port_text and not computed:
        target = f"[{addr_text}]:{port_text}"
    else:
        target = addr_text + (f":{port_text}" if port_text else "")
    flags = body.get("flags")
    flags_text = ",".join(map(str, flags)) if isinstance(flags, list) else flags if isinstance(flags, str) else ""
    words = [kind, family or "", f"to {target}" if target else "", flags_text]
    text = " ".join(w for w in words if w)
    return NatStmt(kind, family, None if computed else target, text)


def _is_literal(expr: dict[str, Any]) -> bool:
    """A range or prefix is a literal NAT target; a map lookup or other expression is not."""
    return len(expr) == 1 and ("range" in expr or "prefix" in expr)


def _counter(body: Any) -> Term:
    return Note("counter", f'counter name "{body}"' if isinstance(body, str) else "counter")


def _log(body: Any) -> Term:
    words = ["log"]
    for key, value in body.items() if isinstance(body, dict) else ():
        words.append(f'{key} "{value}"' if key == "prefix" else f"{key} {render(value)}")
    return Note("log", " ".join(words))


def _limit(body: Any) -> Term | None:
    if not isinstance(body, dict) or "rate" not in body:
        return None
    over = "over " if body.get("inv") else ""
    unit = body.get("rate_unit", "packets")
    per = body.get("per", "second")
    rate = f"{body['rate']}/{per}" if unit == "packets" else f"{body['rate']} {unit}/{per}"
    text = f"limit rate {over}{rate}"
    burst = body.get("burst")
    if unit == "packets" and burst not in (None, 0, 5):
        text += f" burst {burst} packets"
    elif unit != "packets" and burst:
        text += f" burst {burst} {body.get('burst_unit', 'bytes')}"
    return Note("cond", text)


def _mangle(body: Any) -> Term | None:
    if not isinstance(body, dict) or "key" not in body or "value" not in body:
        return None
    key = render(body["key"])
    text = f"{key} set {render(body['value'], _hint(key))}"
    return Note("mark" if key == "meta mark" else "effect", text)


def _vmap(body: Any) -> Term | None:
    if not isinstance(body, dict) or "key" not in body or "data" not in body:
        return None
    key = render(body["key"])
    value = _value(body["data"], _hint(key))
    return VmapStmt(key, value, f"{key} vmap {_value_text(value)}")


def _xt(body: Any) -> Term:
    xt_type = body.get("type") if isinstance(body, dict) else None
    name = body.get("name") if isinstance(body, dict) else None
    return Note("effect" if xt_type == "target" else "cond", f"xt {xt_type} {name}")


_STATEMENTS = {
    "counter": _counter,
    "log": _log,
    "limit": _limit,
    "mangle": _mangle,
    "vmap": _vmap,
    "xt": _xt,
    "notrack": lambda body: Note("effect", "notrack"),
}
