"""Run inside a test namespace (nsenter --net=...): a `LiveReader` that follows nf_tables' change notices, as the
TUI's feed does. For each `read` line on stdin, once the notices of every change so far are in, it reads the
rules again (only the tables the changes named; `read all`: everything, as the TUI's safety net does) and
prints, as JSON, whether that read equals a fresh full read, which tables it took from the read before instead of
listing them again, which chains of each other native table it listed, and whether it was a read built on the
last one at all; `quit` ends it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from portscope.core import live
from portscope.core.changes.nft_generation import generation
from portscope.core.changes.nft_notices import Commit, NftNotices
from portscope.core.changes.rule_changes import RuleChanges
from portscope.core.live import LiveReader
from portscope.core.rules.live import RuleRead, read_rules


def summary(read: RuleRead) -> list[Any]:
    """Every table, chain and rule field by field; every backend's status; every source's text."""
    tables = [
        [t.backend, t.family, t.name, [[c.name, c.hook, c.kind, c.policy, c.priority,
                                        [[r.text, repr(r.matches), r.verdict, r.jump, repr(r.nat), r.position,
                                          r.line, r.comment] for r in c.rules]] for c in t.chains.values()]]
        for t in read.tables
    ]  # fmt: skip
    backends = [[b.backend, b.family, b.read, b.rules, b.reason] for b in read.backends]
    sources = [[s.backend, s.family, s.format, s.origin, s.text] for s in read.sources]
    return [tables, backends, sources]


def main() -> None:
    changes, notices, stopping = RuleChanges(), NftNotices(), threading.Event()
    seen: list[int | None] = [None]

    def committed(commit: Commit | None) -> None:
        changes.committed(commit)
        seen[0] = commit.generation if commit is not None else None

    threading.Thread(target=notices.follow, args=(committed, stopping), daemon=True).start()
    built_on: list[bool] = []  # for each rules read: whether it was told to build on the last read

    def recording(*args: Any, **kwargs: Any) -> RuleRead:
        built_on.append(kwargs.get("since") is not None)
        return read_rules(*args, **kwargs)

    live.read_rules = recording  # type: ignore[assignment]
    reader = LiveReader("unix:///nonexistent/portscope-test.sock", rule_changes=changes)
    reader.read()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() not in ("read", "read all"):
            break
        now = generation()
        for _ in range(500):  # the notices of the last change, at most 5 s
            if seen[0] == now:
                break
            time.sleep(0.01)
        assert reader._last is not None
        last = reader._last.rules
        reader.read() if line.strip() == "read all" else reader.read({"rules"})
        new = reader._last.rules
        kept = [f"{'ip6' if 'ip6tables' in k[0] else 'ip'}/{k[2]}" for k, v in new.dumps.items()
                if k[1:2] == ("-t",) and last.dumps.get(k) is v]  # fmt: skip
        kept += [f"{family}/{name}" for (family, name), v in new.native.items() if last.native.get((family, name)) is v]
        listed = {f"{family}/{name}": sorted(v.listed) for (family, name), v in new.native.items()
                  if last.native.get((family, name)) is not v}  # fmt: skip
        fresh = read_rules()
        answer = {"same": summary(new) == summary(fresh), "kept": sorted(kept), "built_on": built_on[-1],
                  "listed": listed}  # fmt: skip
        print(json.dumps(answer), flush=True)
    stopping.set()


if __name__ == "__main__":
    main()
