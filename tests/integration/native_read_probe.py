"""Run inside a test namespace (nsenter --net=...): print, as JSON, the native nftables tables as `read_rules`
reads them chain by chain and as a whole JSON listing reads them, for tests/integration/test_native_table_reads.py.

`python -m tests.integration.native_read_probe SCOPE [untranslatable]`: SCOPE is `all` or `port`; with
`untranslatable`, the text parser cannot translate a DNAT (as with syntax it does not know).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from portscope.core.model import Table
from portscope.core.rules import nft_text
from portscope.core.rules.formats import parse_source
from portscope.core.rules.live import RuleRead, RuleTools, read_rules


def tables(found: list[Table]) -> list[Any]:
    """Every native table's chains and rules, field by field (records as their repr)."""
    return [
        [t.family, t.name, [[c.name, c.hook, c.kind, c.policy, c.priority,
                             [[r.text, repr(r.matches), r.verdict, r.jump, repr(r.nat), r.nat_family, r.position,
                               r.comment] for r in c.rules]] for c in t.chains.values()]]
        for t in found if t.backend == "nftables"
    ]  # fmt: skip


def lines(found: list[Table]) -> list[Any]:
    """Each native rule's line in its source text."""
    return [[t.name, c.name, r.position, r.line] for t in found if t.backend == "nftables"
            for c in t.chains.values() for r in c.rules]  # fmt: skip


def summary(read: RuleRead) -> dict[str, Any]:
    sources = [s for s in read.sources if s.backend == "nftables"]
    again = [t for s in sources for t in parse_source(s)]
    pending = sorted(c.name for t in read.tables if t.backend == "nftables" for c in t.chains.values() if c.has_pending)
    return {
        "pending": pending,  # the chains with rules not translated yet, as the read left them
        "tables": tables(read.tables),
        "lines": lines(read.tables),
        "lines_reparsed": lines(again),
        "backends": [[b.backend, b.family, b.read, b.rules, b.reason] for b in read.backends],
        "sources": [[s.format, s.origin] for s in sources],
        "reparsed": tables(again),
    }


def main(scope: str, untranslatable: bool) -> None:
    if untranslatable:
        build = nft_text.build_rules

        def refuse_dnat(terms: list, site: Any, sets: dict) -> list:
            if " dnat " in f" {site.text} ":
                raise ValueError("cannot translate")
            return build(terms, site, sets)

        nft_text.build_rules = refuse_dnat  # type: ignore[assignment]
        nft_text.text_fast_rule = lambda site: None  # type: ignore[assignment]  # every rule by build_rules
    by_chain = read_rules(scope=scope)
    whole = read_rules(scope=scope, tools=RuleTools(generation=None))
    print(json.dumps({"by_chain": summary(by_chain), "whole": summary(whole)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] == ["untranslatable"])
