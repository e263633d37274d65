"""portscope's part of an `iptables-save` dump: its chains (PORTSCOPE*) and the jumps into them.

`OurView` is also what `render` produces as the wanted state, so that applying, rolling back and
checking for drift are all one comparison of two views.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from portscope.core.owners import PORTSCOPE_PREFIX

_JUMP = re.compile(r"(?:^| )-[jg] (PORTSCOPE[A-Za-z0-9_-]*)$")
#: Tables in the order batches write them.
TABLE_ORDER = ("nat", "filter", "raw", "mangle")


@dataclass(frozen=True, slots=True)
class Jump:
    """A jump into one of our chains from someone else's chain: `-I chain position spec`."""

    chain: str
    spec: str  # the rule after `-A CHAIN `, e.g. `-m addrtype --dst-type LOCAL -j PORTSCOPE`
    position: int = 1

    @property
    def key(self) -> tuple[str, str]:
        return (self.chain, self.spec)


@dataclass(slots=True)
class TableView:
    chains: dict[str, list[str]] = field(default_factory=dict)  # our chain -> its `-A` lines, in order
    jumps: list[Jump] = field(default_factory=list)
    builtin: set[str] = field(default_factory=set)  # every chain of the table (ours and others')

    def rule_lines(self) -> list[str]:
        return [line for lines in self.chains.values() for line in lines]


#: table name -> our part of it (tables with nothing of ours are absent unless read from a dump).
OurView = dict[str, TableView]


def parse_save(text: str) -> OurView:
    """Our chains, their rules and the jumps into them, per table; `builtin` lists every chain seen.

    Only the lines naming PORTSCOPE, the `*table` lines and the chain declarations are read, each found with
    `str.find`: a dump of 30,000 rules holds a few dozen of ours.
    """
    view: OurView = {}
    starts: list[int] = []  # where each table's `*name` line starts, in order
    tables: list[TableView] = []
    for begin, line in _lines_starting(text, "*"):
        starts.append(begin)
        tables.append(view.setdefault(line[1:], TableView()))
    for begin, line in _lines_starting(text, ":"):
        at = bisect_right(starts, begin) - 1
        if at < 0:
            continue
        name = line[1:].split(" ", 1)[0]
        tables[at].builtin.add(name)
        if name.startswith(PORTSCOPE_PREFIX):
            tables[at].chains.setdefault(name, [])
    for begin, line in _lines_naming(text, PORTSCOPE_PREFIX):
        at = bisect_right(starts, begin) - 1
        if at < 0 or not line.startswith("-A "):
            continue
        end = line.find(" ", 3)
        chain = line[3:end] if end > 0 else line[3:]
        spec = line[end + 1 :] if end > 0 else ""
        if chain.startswith(PORTSCOPE_PREFIX):
            tables[at].chains.setdefault(chain, []).append(line)
        elif _JUMP.search(spec):
            before = text[starts[at] : begin]  # the table so far: its rules in this chain come before the jump
            bare = re.finditer(f"\n-A {re.escape(chain)}(?=\n)", before)  # rules with nothing after the chain
            position = before.count(f"\n-A {chain} ") + sum(1 for _ in bare) + 1
            tables[at].jumps.append(Jump(chain, spec, position))
    return view


def _lines_starting(text: str, mark: str) -> Iterator[tuple[int, str]]:
    """(where it starts, the line) of each line of `text` that starts with `mark`, in order."""
    newline = -1 if text.startswith(mark) else text.find("\n" + mark)  # the one before the line (-1: none)
    if newline < 0 and not text.startswith(mark):
        return
    while True:
        begin = newline + 1
        end = text.find("\n", begin)
        end = len(text) if end < 0 else end
        yield begin, text[begin:end]
        newline = text.find("\n" + mark, end)
        if newline < 0:
            return


def _lines_naming(text: str, word: str) -> Iterator[tuple[int, str]]:
    """(where it starts, the line) of each line of `text` holding `word`, once each, in order."""
    found = text.find(word)
    while found >= 0:
        begin = text.rfind("\n", 0, found) + 1
        end = text.find("\n", found)
        end = len(text) if end < 0 else end
        yield begin, text[begin:end]
        found = text.find(word, end)


def jump_target(spec: str) -> str | None:
    match = _JUMP.search(spec)
    return match.group(1) if match else None


def ours_only(view: OurView) -> OurView:
    """Drop tables in which we have nothing."""
    return {name: t for name, t in view.items() if t.chains or t.jumps}


def same(a: OurView, b: OurView) -> bool:
    """True when both views hold the same chains, rules (in order) and jumps (position aside)."""
    a, b = ours_only(a), ours_only(b)
    if a.keys() != b.keys():
        return False
    for name, ta in a.items():
        tb = b[name]
        if ta.chains != tb.chains or {j.key for j in ta.jumps} != {j.key for j in tb.jumps}:
            return False
    return True


def differences(wanted: OurView, actual: OurView) -> list[str]:
    """One line per rule or jump that is wanted but missing (`-`), or present but unwanted (`+`)."""
    out: list[str] = []
    for name in sorted(set(ours_only(wanted)) | set(ours_only(actual)), key=_table_key):
        tw, ta = wanted.get(name, TableView()), actual.get(name, TableView())
        for chain in sorted(set(tw.chains) | set(ta.chains)):
            if chain not in ta.chains:
                out.append(f"missing chain {name}/{chain}")
            elif chain not in tw.chains:
                out.append(f"unexpected chain {name}/{chain}")
            want, have = tw.chains.get(chain, []), ta.chains.get(chain, [])
            missing = [f"missing: -t {name} {line}" for line in want if line not in have]
            extra = [f"unexpected: -t {name} {line}" for line in have if line not in want]
            out += missing + extra
            if not missing and not extra and want != have:
                out.append(f"rules out of order (or repeated) in {name}/{chain}")
        wj, aj = {j.key for j in tw.jumps}, {j.key for j in ta.jumps}
        out += [f"missing jump: -t {name} -A {c} {s}" for c, s in sorted(wj - aj)]
        out += [f"unexpected jump: -t {name} -A {c} {s}" for c, s in sorted(aj - wj)]
    return out


def _table_key(name: str) -> tuple[int, str]:
    return (TABLE_ORDER.index(name) if name in TABLE_ORDER else len(TABLE_ORDER), name)
