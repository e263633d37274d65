"""The live host as a feed: a full read, reads of only what changed, and the watcher that says what did."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from portscope.core.changes.rule_changes import RuleChanges
from portscope.core.changes.watcher import ChangeWatcher, Kind, WatchSettings
from portscope.core.live import PARTS, LiveReader
from portscope.core.model import Snapshot


class Feed(Protocol):
    """What the TUI needs of a live source: reads (of everything, or of some parts) and change notices."""

    def read(self, changed: Collection[str] = PARTS) -> Snapshot: ...
    def watch(self, notify: Callable[[frozenset[Kind]], None]) -> list[str]: ...
    def stop(self) -> None: ...


class LiveFeed:
    """`read()` everything or `read(changed)` only some parts; `watch(notify)` until `stop()`."""

    def __init__(
        self, docker_host: str | None = None, proc: str = "/proc", settings: WatchSettings | None = None
    ) -> None:
        self.rule_changes = RuleChanges()  # the watcher tells it, the reader asks it which tables to read again
        self.reader = LiveReader(docker_host, proc, rule_changes=self.rule_changes)
        self.settings = settings or WatchSettings()
        self._watcher: ChangeWatcher | None = None

    def read(self, changed: Collection[str] = PARTS) -> Snapshot:
        return self.reader.read(changed)

    def watch(self, notify: Callable[[frozenset[Kind]], None]) -> list[str]:
        """Start watching (once); the sources that cannot be followed, one line each."""
        if self._watcher is None:
            self._watcher = ChangeWatcher(
                notify,
                docker_host=self.reader.docker_host,
                proc=self.reader.proc,
                settings=self.settings,
                rule_changes=self.rule_changes,
            )
            return self._watcher.start()
        return list(self._watcher.problems)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
