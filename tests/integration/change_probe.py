"""Run inside a test namespace (nsenter --net=...): print core.changes' view of it.

`python -m tests.integration.change_probe legacy|shape|listeners` prints that fingerprint (hex, or
`none`); `... generation` prints nf_tables' generation number; `... watch` runs a ChangeWatcher (no
engine) and prints the kinds of each notification, one line each, until stdin closes; `... notices` joins
nf_tables' change notices, prints `joined`, then `changed GENERATION TABLES` for each committed change (a
table only rule notices named comes with their chains) until stdin closes.
"""

from __future__ import annotations

import sys
import threading
from itertools import repeat

from portscope.core.changes import legacy_tables, listeners, nft_generation
from portscope.core.changes.nft_notices import Commit, NftNotices
from portscope.core.changes.watcher import ChangeWatcher, WatchSettings


def committed(commit: Commit | None) -> str:
    """`changed GENERATION FAMILY/TABLE,...` (`?` for what is not known); a table only rule notices named is
    `FAMILY/TABLE:CHAIN+CHAIN`."""
    if commit is None:
        return "changed ? ?"
    tables = "?" if commit.tables is None else ",".join(sorted(map(named, commit.tables, repeat(commit))))
    return f"changed {commit.generation if commit.generation is not None else '?'} {tables}"


def named(table: tuple[str, str], commit: Commit) -> str:
    chains = commit.chains.get(table)
    return f"{table[0]}/{table[1]}" + ("" if chains is None else ":" + "+".join(sorted(chains)))


def main(what: str) -> None:
    if what == "watch":
        watcher = ChangeWatcher(
            lambda kinds: print(" ".join(sorted(kinds)), flush=True),
            docker_host="unix:///nonexistent/portscope-test.sock",
            settings=WatchSettings(poll=0.2, engine_retry=3600),
        )
        watcher.start()
        print("watching", flush=True)
        sys.stdin.read()
        watcher.stop()
        return
    if what == "notices":
        notices, stopping = NftNotices(), threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), stopping.set()), daemon=True).start()
        print("joined", flush=True)
        why = notices.follow(lambda commit: print(committed(commit), flush=True), stopping)
        print(f"stopped: {why}" if why else "stopped", flush=True)
        return
    if what == "generation":
        print(nft_generation.generation(), flush=True)
        return
    read = {"legacy": legacy_tables.fingerprint, "shape": legacy_tables.shape, "listeners": listeners.fingerprint}
    value = read[what]()
    print(value.hex() if value is not None else "none", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
