"""What every command reads first, under the lock: the backend, a live snapshot; and the one way to write.

`World.commit` and `World.drift` dispatch to the iptables writer (`commit.py`) or the native nftables
one (`nft_commit.py`), so publish, unpublish, block, apply, reconcile, status and watch share one path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from portscope.core.errors import EngineError, NotRootError, PortscopeError
from portscope.core.model import Family, Snapshot
from portscope.core.publish.backend import Backend, resolve_backend
from portscope.core.publish.commit import FAMILIES, Outcome, commit, read_views
from portscope.core.publish.model import State
from portscope.core.publish.owned import Owned, claim
from portscope.core.publish.render import Placed, render
from portscope.core.publish.saved import OurView, differences
from portscope.core.publish.validate import check_iface


@dataclass(slots=True)
class World:
    backend: Backend
    snap: Snapshot
    previous: Backend | None = None  # the backend stored bindings were written with, when it differs
    owned: Owned = field(default_factory=Owned)  # what portscope created (updated by every commit)

    def tables_present(self, family: Family) -> dict[str, set[str]]:
        return {
            t.name: set(t.chains) for t in self.snap.tables if t.backend == self.backend.name and t.family == family
        }

    def wanted(self, placed: list[Placed]) -> dict[Family, OurView]:
        return {f: render(placed, f, self.tables_present(f)) for f in FAMILIES}

    def commit(
        self, placed: list[Placed], inject: Mapping[str, Sequence[str]] | None = None, dry_run: bool = False
    ) -> Outcome:
        """Write our rules for `placed` on this backend (one atomic change); RuleRefusedError changes nothing."""
        if self.backend.native:
            from portscope.core.publish.nft_commit import commit_nft

            outcome = commit_nft(placed, inject, dry_run, self.owned)
        else:
            outcome = commit(self.backend, self.wanted(placed), inject, dry_run, self.owned)
        if self.previous is not None and not dry_run:
            outcome.notes.append(self._clear_previous())
        return outcome

    def drift(self, placed: list[Placed]) -> list[str]:
        """Every difference between the rules `placed` needs and the kernel's (nothing is changed)."""
        if self.backend.native:
            from portscope.core.publish.nft_commit import drift_nft

            return drift_nft(placed, self.owned)
        wanted = self.wanted(placed)
        dumps = {f: view for f, (view, _) in read_views(self.backend).items()}
        actual = {f: claim(dumps[f], self.owned, self.backend.name, f)[0] for f in FAMILIES}
        return [line for f in FAMILIES for line in differences(wanted.get(f, {}), actual.get(f, {}))]

    def _clear_previous(self) -> str:
        """Remove our rules from the backend the bindings were on before (after the new one holds them)."""
        old = self.previous
        assert old is not None
        try:
            World(old, self.snap, owned=self.owned).commit([])
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
    chosen = resolve_backend(backend, stored)
    chosen.check_writable()
    snap = read_live(docker_host)
    previous = Backend(stored) if stored and stored != chosen.name else None  # type: ignore[arg-type]
    return World(backend=chosen, snap=snap, previous=previous, owned=owned_from(current))


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
