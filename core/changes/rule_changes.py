"""Which nf_tables tables changed since a read: what lets the live view read only those again.

Each committed change arrives as the kernel's notices (`nft_notices`): the tables its objects belong to, then
the new generation that ends it. Kept by generation, they say which tables changed between the generation a
read held and the one the next read starts at, when every generation in between was seen and named its
tables. Notices lost (the socket's buffer overflowed) and changes seen any other way (the
generation polled) are "unknown": the next read reads every table, and starts the count again. A table that only
rule notices named is told with the chains they named (a native table is then listed again only there).
(iptables-legacy's tables, which no notice covers, are dumped again by every read of the rules.)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from portscope.core.changes.nft_notices import Commit

#: At most this many committed changes between two reads are followed table by table (more: read everything).
MAX_COMMITS = 256
TableName = tuple[str, str]  # nft family, table name
#: The tables changed, each with the only chains that changed in it (None: the table as a whole).
Touched = Mapping[TableName, frozenset[str] | None]


class RuleChanges:
    """The tables each committed nf_tables change named, by generation; thread-safe (the watcher writes, the
    reader asks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commits: dict[int, Commit] = {}
        self._unknown = True  # until a read of every table: what changed before the watcher looked is not known

    def committed(self, commit: Commit | None) -> None:
        """One committed change, as its notices told it (None: some were lost)."""
        with self._lock:
            if commit is None or commit.generation is None:
                self._unknown = True
            elif len(self._commits) >= MAX_COMMITS:
                self._unknown = True
                self._commits.clear()
            else:
                self._commits[commit.generation] = commit

    def unknown(self) -> None:
        """Rules changed in a way no notice tells: the next read reads every table."""
        with self._lock:
            self._unknown = True

    def read_everything(self) -> None:
        """A read of every table starts: what was unknown before it, it reads."""
        with self._lock:
            self._unknown = False

    def touched(self, since: int, now: int) -> Touched | None:
        """The tables the changes after generation `since`, up to `now`, named, each with the chains that alone
        changed in it (None: the whole table); None when that is not known (the caller then reads every table,
        from now on the count starts again)."""
        with self._lock:
            for generation in [g for g in self._commits if g <= since]:
                del self._commits[generation]
            wanted = range(since + 1, now + 1)
            commits = (self._commits.get(g) for g in wanted) if len(wanted) <= MAX_COMMITS else ()
            named = [c for c in commits if c is not None and c.tables is not None]  # too many: none
            if self._unknown or now < since or len(named) < len(wanted):
                self._unknown = False
                return None
            out: dict[TableName, frozenset[str] | None] = {}
            for commit in named:
                for table in commit.tables or ():
                    chains, before = commit.chains.get(table), out.get(table, frozenset())
                    out[table] = None if chains is None or before is None else before | chains
            return out
