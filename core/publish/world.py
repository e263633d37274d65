"""What every command reads first, under the lock: the backend, a live snapshot; and the one way to write.

`World.commit` and `World.drift` dispatch to the iptables writer (`commit.py`) or the native nftables
one (`nft_commit.py`), so publish, unpublish, block, apply, reconcile, status and watch share one path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from portscope.core.errors import EngineError, NotRootError, PortscopeError
from portscope.core.model import Family, Snapshot, Table
from portscope.core.publish import guard_io
from portscope.core.publish.backend import Backend, Detection, engine_backend, resolve_backend
from portscope.core.publish.commit import FAMILIES, Outcome, commit, read_views
from portscope.core.publish.guard import batch_lines
from portscope.core.publish.guard import rule_lines as bridge_rule_lines
from portscope.core.publish.model import State
from portscope.core.publish.nft_render import NftView
from portscope.core.publish.owned import Owned, claim
from portscope.core.publish.render import Placed, render
from portscope.core.publish.saved import OurView, differences
from portscope.core.publish.validate import check_iface
from portscope.core.publish.veth import namespace_paths, peer_indexes
from portscope.core.tools import which

#: The key of the guard's `nft -f` batch in `Outcome.batches` (iptables backends; native: in the one batch), and
#: of `inject` (test hook) lines appended to it.
BRIDGE_BATCH = "nft-bridge"
#: nft's family names for the snapshot's table families.
_NFT_FAMILY = {"ipv4": "ip", "ipv6": "ip6", "inet": "inet"}
#: The one line a command prints when bindings cannot be guarded.
UNGUARDED = (
    "{what}: such a binding keeps forwarding to its container's address after the container stops "
    "(to whatever takes that address next) unless `portscope watch` runs"
)


@dataclass(slots=True)
class World:
    backend: Backend
    snap: Snapshot
    previous: Backend | None = None  # the backend stored bindings were written with, when it differs
    owned: Owned = field(default_factory=Owned)  # what portscope created (updated by every commit)
    _guard_why: str | None = None  # why the guard cannot be written ("" once checked and fine)
    _links: dict[tuple[str, str], int | None] = field(default_factory=dict)  # (container id, address) -> veth
    _dumps_current: bool = True  # no commit of this world yet: the snapshot's dumps still show the kernel
    look: Future[guard_io.Look] | None = None  # the guard probed and its table listed beside the snapshot's read

    def tables_present(self, family: Family) -> dict[str, set[str]]:
        return {
            t.name: set(t.chains) for t in self.snap.tables if t.backend == self.backend.name and t.family == family
        }

    def saved_dumps(self) -> dict[Family, str]:
        """This backend's iptables-save dumps that the snapshot read (under the same lock), per family, until this
        world commits: the commit then dumps only what is missing instead of reading every rule again."""
        if not self._dumps_current:
            return {}
        dumps: dict[Family, str] = {}
        for s in self.snap.sources:  # one dump per family, or one per table (each whole: they join into one)
            if s.backend == self.backend.name and s.format == "iptables-save" and s.family in FAMILIES:
                dumps[s.family] = dumps.get(s.family, "") + s.text
        return dumps

    def docker_tables(self) -> dict[Family, Table | None] | None:
        """Docker's `docker-bridges` tables as the snapshot read them (None: no such table), until this world
        commits; None when the snapshot cannot say (native tables unread)."""
        if not self._dumps_current or not any(b.backend == "nftables" and b.read for b in self.snap.backends):
            return None
        tables = {(t.family, t.name): t for t in self.snap.tables if t.backend == "nftables"}
        return {family: tables.get((family, "docker-bridges")) for family in FAMILIES}

    def wanted(self, placed: list[Placed]) -> dict[Family, OurView]:
        return {f: render(placed, f, self.tables_present(f)) for f in FAMILIES}

    def commit(
        self,
        placed: list[Placed],
        inject: Mapping[str, Sequence[str]] | None = None,
        dry_run: bool = False,
        guard: bool = True,
    ) -> Outcome:
        """Write our rules for `placed` on this backend, and the guard's bridge table (one atomic change);
        RuleRefusedError changes nothing. `guard=False` leaves the bridge table alone."""
        placed, warnings = self.guard(placed) if guard else (placed, [])
        if self.backend.native:
            from portscope.core.publish.nft_commit import commit_nft

            docker = self.docker_tables()
            outcome = commit_nft(
                placed, inject, dry_run, self.owned, guard=guard and self.nft is not None, docker_tables=docker
            )
        else:
            outcome = self._commit_iptables(placed, inject, dry_run, guard)
        if not dry_run:
            self._dumps_current = False
        outcome.warnings += warnings
        if self.previous is not None and not dry_run:
            outcome.notes.append(self._clear_previous())
        return outcome

    def _commit_iptables(
        self, placed: list[Placed], inject: Mapping[str, Sequence[str]] | None, dry_run: bool, guard: bool
    ) -> Outcome:
        """The iptables batches, then the guard's bridge table with `nft -f` (a refusal rolls both back)."""
        nft = self.nft
        change = guard_io.plan(placed, self.owned, self._bridge_listed(nft)) if guard and nft else None
        inject = dict(inject or {})
        extra = inject.pop(BRIDGE_BATCH, ())  # test hook: lines the kernel refuses, after ours
        if change is not None and extra:
            change.lines = [*batch_lines(change.want, change.have, force=True), *extra]

        def write_bridge() -> None:
            assert change is not None and nft is not None
            guard_io.apply_bridge(nft, change.lines)
            self.owned.set_bridge(bool(change.want))

        after = write_bridge if change is not None and change.lines and not dry_run else None
        outcome = commit(
            self.backend, self.wanted(placed), inject, dry_run, self.owned, after=after, saved=self.saved_dumps()
        )
        if change is not None:
            outcome.warnings += [change.warning] if change.warning else []
            if change.lines:
                outcome.batches[BRIDGE_BATCH] = "\n".join(change.lines) + "\n"
                old, new = bridge_rule_lines(change.have), bridge_rule_lines(change.want)
                outcome.added += [line for line in new if line not in old]
                outcome.removed += [line for line in old if line not in new]
        return outcome

    def guard(self, placed: list[Placed]) -> tuple[list[Placed], list[str]]:
        """`placed` with each container binding's host-side veth (`link`), where the guard can cover it; and
        the one warning line about the bindings it cannot cover."""
        candidates = {p.binding.id: p for p in placed if p.binding.kind == "publish" and p.binding.container_id}
        if not candidates:
            return placed, []
        why = self.guard_unavailable()
        if why is not None:
            return placed, [UNGUARDED.format(what=f"no guard: {why}")]
        keys = {bid: (p.binding.container_id or "", p.target_ip) for bid, p in candidates.items()}
        unknown = {key for key in keys.values() if key not in self._links}
        paths = namespace_paths(
            self.snap.engine.endpoint if self.snap.engine.reachable else None, {c for c, _ in unknown}
        )
        found = peer_indexes({f"{c} {ip}": (paths[c], ip) for c, ip in unknown if c in paths})
        self._links.update({(c, ip): found.get(f"{c} {ip}") for c, ip in unknown})
        links = {bid: link for bid, key in keys.items() if (link := self._links[key]) is not None}
        out = [replace(p, link=links[p.binding.id]) if p.binding.id in links else p for p in placed]
        missing = sorted(set(candidates) - set(links))
        if not missing:
            return out, []
        return out, [UNGUARDED.format(what=f"{', '.join(missing)}: no guard (the container's veth was not found)")]

    def guard_unavailable(self) -> str | None:
        """Why the guard cannot be written on this host (checked once per World), or None."""
        if self._guard_why is None:
            self._guard_why = (self.look.result().unavailable if self.look else guard_io.unavailable(self.nft)) or ""
        return self._guard_why or None

    def _bridge_listed(self, nft: str) -> NftView | None:
        """Our bridge table as the kernel holds it: as listed beside the snapshot's read, until this world commits."""
        if self.look is not None and self._dumps_current:
            return self.look.result().listed()
        return guard_io.read_bridge(nft)

    @property
    def nft(self) -> str | None:
        return which("nft")

    def drift(self, placed: list[Placed]) -> list[str]:
        """Every difference between the rules `placed` needs and the kernel's (nothing is changed); the dumps the
        snapshot read under the same lock are not read again."""
        placed, _ = self.guard(placed)
        if self.backend.native:
            from portscope.core.publish.nft_commit import drift_nft

            return drift_nft(placed, self.owned, self.docker_tables())
        wanted = self.wanted(placed)
        dumps = {f: view for f, (view, _) in read_views(self.backend, dumps=self.saved_dumps()).items()}
        actual = {f: claim(dumps[f], self.owned, self.backend.name, f)[0] for f in FAMILIES}
        out = [line for f in FAMILIES for line in differences(wanted.get(f, {}), actual.get(f, {}))]
        return out + (guard_io.drift(placed, self.owned, self.nft) if self.nft else [])

    def _clear_previous(self) -> str:
        """Remove our rules from the backend the bindings were on before (after the new one holds them); the
        guard's bridge table belongs to no backend and stays."""
        old = self.previous
        assert old is not None
        try:
            World(old, self.snap, owned=self.owned).commit([], guard=False)
        except PortscopeError as exc:
            return f"moved the bindings from {old.name} to {self.backend.name}; removing the old rules failed: {exc}"
        return f"moved the bindings from {old.name} to {self.backend.name} (old rules removed)"

    def require_engine(self) -> None:
        if not self.snap.engine.reachable:
            raise EngineError(f"cannot reach the container engine: {self.snap.engine.reason}")


def require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise NotRootError(f"`portscope {command}` reads and changes the firewall: run it as root (sudo)")


def read_world(docker_host: str | None = None, backend: str = "auto", current: State | None = None) -> World:
    """Backend (`backend` is the --backend choice; `current` the stored state) and a live snapshot."""
    from portscope.core.live import read_live

    stored = current.backend if current is not None and current.bindings else None
    nft = which("nft")
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portscope-guard")
    look = pool.submit(guard_io.look, nft) if nft else None  # the guard's reads, beside the snapshot's
    pool.shutdown(wait=False)  # a command that never needs the guard does not wait for them
    snap = read_live(docker_host, scope="port")  # a change looks at the rules of its port (`focus`)
    chosen = resolve_backend(backend, stored, engine_in(snap))  # None: `detect` reads again
    chosen.check_writable()
    previous = Backend(stored) if stored and stored != chosen.name else None  # type: ignore[arg-type]
    return World(backend=chosen, snap=snap, previous=previous, owned=owned_from(current), look=look)


def engine_in(snap: Snapshot) -> Detection | None:
    """Where the engine's rules are, found in the dumps the snapshot already holds (the nat table of each
    iptables flavour, the native tables' names) by the test `detect` makes on its own reads; None when a
    backend went unread or no engine's rules are there (then `detect` asks the kernel, and `iptables -V`)."""
    if any(not b.read for b in snap.backends):
        return None
    nat: dict[str, str] = {}
    for s in snap.sources:  # a dump of every table, or one per table
        if s.family == "ipv4" and s.format == "iptables-save" and (section := _nat_section(s.text)):
            nat[s.backend] = section
    names = "\n".join(f"table {_NFT_FAMILY[t.family]} {t.name}" for t in snap.tables if t.backend == "nftables")
    engine, evidence = engine_backend(nat.get("iptables-nft", ""), nat.get("iptables-legacy", ""), names)
    return Detection(engine, fallback=engine, evidence=evidence) if engine is not None else None


def _nat_section(save: str) -> str:
    """The `*nat` ... `COMMIT` part of an iptables-save dump (what `iptables-save -t nat` prints)."""
    start = save.find("*nat\n")
    if start < 0:
        return ""
    end = save.find("\nCOMMIT", start)
    return save[start:] if end < 0 else save[start:end]


def owned_from(current: State | None) -> Owned:
    """What the state records portscope created; a state from before the record, with bindings, is adopted."""
    if current is None or (current.created is None and not current.bindings):
        return Owned()
    return Owned.from_state(current.created)


def set_route_localnet(bridge: str, value: str, proc: str = "/proc") -> str:
    """Set net.ipv4.conf.BRIDGE.route_localnet (1 is needed to DNAT 127.0.0.1 to a container); returns the
    value it had."""
    if check_iface(bridge) in (".", "..") or value not in ("0", "1"):
        raise ValueError(f"route_localnet {bridge!r}={value!r}")
    path = os.path.join(proc, "sys/net/ipv4/conf", bridge, "route_localnet")
    with open(path, "r+", encoding="ascii") as f:
        previous = f.read().strip()
        if previous != value:
            f.seek(0)
            f.write(f"{value}\n")
    return previous
