"""One watcher over every change source: it tells its caller what changed (rules, containers, sockets).

- nf_tables (native nftables and iptables-nft): the kernel's change notices (`nft_notices`); where they cannot
  be joined, the ruleset's generation number every `poll` seconds (one netlink request; `nft monitor` would
  first load the whole ruleset, and miss what changes meanwhile);
- the container engine: its event stream (containers and networks);
- iptables-legacy, which notifies nothing: its tables' shape every `legacy_poll` seconds (a few syscalls), their
  whole content (counters left out) as often as `legacy_share` of one core allows, at most every `poll` seconds;
- listening sockets: a netlink sock_diag fingerprint every `poll` seconds.

Changes are passed on in bursts: after the first, `settle` seconds without another (at most `settle_max`
in all), so the commits of tools run back to back cost one read; the caller reads once more after a read that
changes came during.
"""

from __future__ import annotations

import errno
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from portscope.core.changes import legacy_tables, listeners, nft_generation
from portscope.core.changes.engine_events import EngineEvents
from portscope.core.changes.nft_notices import Commit, NftNotices
from portscope.core.changes.rule_changes import RuleChanges

Kind = Literal["rules", "containers", "sockets"]
EVERYTHING: frozenset[Kind] = frozenset({"rules", "containers", "sockets"})


@dataclass(slots=True)
class WatchSettings:
    poll: float = 0.2
    legacy_poll: float = 0.1
    legacy_share: float = 0.005  # of one core, for reading iptables-legacy's whole tables
    settle: float = 0.02
    settle_max: float = 0.4
    engine_retry: float = 5.0


@dataclass(slots=True)
class ChangeWatcher:
    """Calls `notify(kinds)` from its own thread whenever something changed; `start`, then `stop` once."""

    notify: Callable[[frozenset[Kind]], None]
    docker_host: str | None = None
    proc: str = "/proc"
    settings: WatchSettings = field(default_factory=WatchSettings)
    #: One line per source that cannot be followed, and why (filled by `start` and as sources fail).
    problems: list[str] = field(default_factory=list)
    _changes: queue.SimpleQueue[Kind | None] = field(default_factory=queue.SimpleQueue)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _engine: EngineEvents | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _notified: threading.Event = field(default_factory=threading.Event)  # nf_tables' notices are followed
    #: Told each committed nf_tables change, and every other rule change as unknown (see `RuleChanges`).
    rule_changes: RuleChanges | None = None

    def start(self) -> list[str]:
        """Start following every source; returns the problems found so far (one line each)."""
        try:
            notices = NftNotices()
        except OSError:
            pass  # not root: nf_tables' generation is polled instead
        else:
            self._notified.set()
            self._spawn("nftables", lambda: self._follow_nftables(notices))
        try:
            nft_generation.generation()
        except OSError as exc:
            hint = " (run portscope as root)" if exc.errno in (errno.EPERM, errno.EACCES) else ""
            self.problems.append(f"cannot follow nf_tables changes ({exc.strerror or exc}): they are seen by the "
                                 f"periodic full read only{hint}")  # fmt: skip
        self._engine = EngineEvents(self.docker_host)
        self._spawn("engine", self._follow_engine)
        self._spawn("poll", self._poll)
        self._spawn("legacy", self._poll_legacy)
        self._spawn("notify", self._dispatch)
        return list(self.problems)

    def stop(self) -> None:
        self._stopping.set()
        if self._engine is not None:
            self._engine.stop()
        self._changes.put(None)

    # ------------------------------------------------------------------ sources

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"portscope-watch-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _follow_engine(self) -> None:
        """Follow the engine's events; when the stream breaks (the engine restarted), try again later."""
        assert self._engine is not None
        while not self._stopping.is_set():
            why = self._engine.follow(lambda: self._changes.put("containers"))
            if why is None:
                return
            self._changes.put("containers")
            if self._stopping.wait(self.settings.engine_retry):
                return
            self._engine = EngineEvents(self.docker_host)

    def _follow_nftables(self, notices: NftNotices) -> None:
        """Each batch of nf_tables notices is a rules change; if they break off, the generation is polled."""
        why = notices.follow(self._committed, self._stopping)
        if why is not None:
            self.problems.append(f"nf_tables' change notices stopped ({why}): its generation is checked instead")
            self._notified.clear()
            self._rules_changed()

    def _committed(self, commit: Commit | None) -> None:
        if self.rule_changes is not None:
            self.rule_changes.committed(commit)
        self._changes.put("rules")

    def _rules_changed(self) -> None:
        """An nf_tables change no notice tells which tables it touched."""
        if self.rule_changes is not None:
            self.rule_changes.unknown()
        self._changes.put("rules")

    def _poll(self) -> None:
        """The change checks: nf_tables' generation (while its notices are not followed) and the listeners."""
        generation = _quietly(nft_generation.generation)
        sockets = _quietly(listeners.fingerprint)
        while not self._stopping.wait(self.settings.poll):
            now_generation = None if self._notified.is_set() else _quietly(nft_generation.generation)
            if now_generation is not None and now_generation != generation:
                generation = now_generation
                self._rules_changed()
            now_sockets = _quietly(listeners.fingerprint)
            if now_sockets != sockets:
                sockets = now_sockets
                self._changes.put("sockets")

    def _poll_legacy(self) -> None:
        """iptables-legacy's change check: its tables' shape, and now and then their whole content."""
        shape = _quietly(lambda: legacy_tables.shape(self.proc))
        whole, every = self._legacy_fingerprint()
        whole_at = time.monotonic()
        while not self._stopping.wait(self.settings.legacy_poll):
            now_shape = _quietly(lambda: legacy_tables.shape(self.proc))
            due = time.monotonic() - whole_at >= every
            if now_shape != shape or (due and now_shape is not None):
                shape = now_shape
                now_whole, every = self._legacy_fingerprint()
                whole_at = time.monotonic()
                if now_whole != whole:
                    whole = now_whole
                    self._changes.put("rules")  # legacy's tables are dumped again by every read of the rules

    def _legacy_fingerprint(self) -> tuple[bytes | None, float]:
        """The legacy tables' fingerprint, and how long to wait before the next one (its cost / the share)."""
        started = time.thread_time()
        whole = _quietly(lambda: legacy_tables.fingerprint(self.proc))
        cost = time.thread_time() - started
        return whole, max(self.settings.poll, cost / self.settings.legacy_share)

    def _dispatch(self) -> None:
        """Collect a burst of changes, then notify once."""
        while True:
            first = self._changes.get()
            if first is None:
                return
            kinds: set[Kind] = {first}
            deadline = time.monotonic() + self.settings.settle_max
            while (left := deadline - time.monotonic()) > 0:
                try:
                    more = self._changes.get(timeout=min(self.settings.settle, left))
                except queue.Empty:
                    break
                if more is None:
                    return
                kinds.add(more)
            if not self._stopping.is_set():
                self.notify(frozenset(kinds))


T = TypeVar("T")


def _quietly(read: Callable[[], T]) -> T | None:
    """A fingerprint, or None when it cannot be taken (the full read reports why)."""
    try:
        return read()
    except OSError:
        return None
