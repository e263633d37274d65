"""Write our chains in one `iptables-restore --noflush -w` batch per family, all-or-nothing.

A noflush restore leaves every chain it does not name alone; declaring `:PORTSCOPE - [0:0]` in it
flushes that chain, so our chains are rebuilt whole and nobody else's rules are touched. Jumps into
our chains are added only when the dump read just before lacks them.

iptables-restore (legacy and nft alike, iptables 1.8) commits each table at its COMMIT line, so a
change that only adds a DNAT writes nat after the filter, raw and mangle rules its packets need, and any
other change writes nat first, so a DNAT removed or moved stops before the rules that went with it. A
batch can fail after an earlier table went in, and a second family's batch can fail after the
first's. Every failure is therefore rolled back from a fresh dump to the view read before: our
chains re-filled with their previous rules, jumps we added removed, chains we created deleted.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from portscope.core.errors import PortscopeError, ToolError
from portscope.core.model import Family
from portscope.core.publish.backend import Backend
from portscope.core.publish.errors import RuleRefusedError, UnsupportedError
from portscope.core.publish.nft_tables import drop_if_empty
from portscope.core.publish.owned import Owned, claim, taken_names
from portscope.core.publish.saved import TABLE_ORDER, OurView, TableView, jump_target, ours_only, parse_save, same

FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")


@dataclass(slots=True)
class Outcome:
    """What a commit did: the batches written (per family; `nft` for the one native nftables batch), the rule
    lines added and removed, and notes and warnings (foreign look-alikes left alone) for the user."""

    batches: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_views(
    backend: Backend, families: Sequence[Family] = FAMILIES, dumps: Mapping[Family, str] | None = None
) -> dict[Family, tuple[OurView, str]]:
    """Our part of each family's dump, and the dump itself; a family in `dumps` (read just before, under the
    same lock) is not dumped again."""
    out: dict[Family, tuple[OurView, str]] = {}
    for family in families:
        text = dumps[family] if dumps and family in dumps else _run(backend.save_argv(family), None).stdout
        out[family] = (parse_save(text), text)
    return out


def build_batch(wanted: OurView, current: OurView, inject: Mapping[str, Sequence[str]] | None = None) -> str:
    """The restore text that turns `current` into `wanted`; empty when nothing changes."""
    inject = inject or {}
    names = set(ours_only(wanted)) | set(ours_only(current)) | set(inject)
    lines: list[str] = []
    for name in sorted(names, key=lambda n: _write_rank(n, wanted, current)):
        want, have = wanted.get(name, TableView()), current.get(name, TableView())
        body = [f":{chain} - [0:0]" for chain in want.chains]
        body += [line for rules in want.chains.values() for line in rules]
        body += list(inject.get(name, ()))
        wanted_keys = {j.key for j in want.jumps}
        seen: Counter[tuple[str, str]] = Counter()
        for jump in have.jumps:
            seen[jump.key] += 1
            if jump.key not in wanted_keys or seen[jump.key] > 1 or jump_target(jump.spec) not in want.chains:
                body.append(f"-D {jump.chain} {jump.spec}")
        present = {j.key for j in have.jumps}
        body += [f"-I {j.chain} {j.position} {j.spec}" for j in want.jumps if j.key not in present]
        for chain in have.chains:
            if chain not in want.chains:
                body += [f"-F {chain}", f"-X {chain}"]
        if body:
            lines += [f"*{name}", *body, "COMMIT"]
    return "\n".join(lines) + "\n" if lines else ""


def commit(
    backend: Backend,
    wanted: Mapping[Family, OurView],
    inject: Mapping[str, Sequence[str]] | None = None,
    dry_run: bool = False,
    owned: Owned | None = None,
    after: Callable[[], None] | None = None,
    saved: Mapping[Family, str] | None = None,
) -> Outcome:
    """Make the kernel hold exactly `wanted` of ours, for every family; RuleRefusedError leaves all as it was.

    Only what `owned` records (updated in place after the commit) is portscope's; without it, portscope's
    chains are recognised by content (see `owned`). A wanted chain whose name another object has is refused.
    `after` is the second step of the same change (the guard's nftables table): when it raises, the
    batches already written are rolled back and its error raised with what the roll-back left.
    `saved`: the families' save dumps when the caller has just read them under the lock (else they are read).
    """
    owned = owned if owned is not None else Owned(adopt=True)
    dumps = {f: view for f, (view, _) in read_views(backend, dumps=saved).items()}
    before: dict[Family, OurView] = {}
    outcome = Outcome()
    for family in FAMILIES:
        before[family], foreign = claim(dumps[family], owned, backend.name, family)
        outcome.warnings += [f"{what} is not portscope's (only its name looks like it): left alone" for what in foreign]
        taken = taken_names(wanted.get(family, {}), dumps[family], before[family])
        if taken:
            raise UnsupportedError(
                f"{family} chain {taken[0]} exists but portscope did not create it: it will not take it over; "
                "rename or delete that chain and run portscope again (nothing was changed)"
            )
    for family in FAMILIES:
        want = wanted.get(family, {})
        batch = build_batch(want, before[family], inject if family == "ipv4" else None)
        if not batch or (same(want, before[family]) and not (inject and family == "ipv4")):
            continue
        outcome.batches[family] = batch
        old, new = _lines(before[family]), _lines(want)
        outcome.added += [line for line in new if line not in old]
        outcome.removed += [line for line in old if line not in new]
    if dry_run:
        return outcome
    done: list[Family] = []
    for family in FAMILIES:
        if family not in outcome.batches:
            continue
        result = _run(backend.restore_argv(family), outcome.batches[family], check=False)
        if result.returncode != 0:
            undo_errors = _roll_back(backend, before, wanted, [*done, family])
            _drop_new_tables(backend, dumps, wanted, [*done, family])
            reason = _one_line(result.stderr or result.stdout) or f"exit status {result.returncode}"
            extra = f"; rolling back failed too ({undo_errors}): run `portscope apply`" if undo_errors else ""
            raise RuleRefusedError(f"the kernel refused the rules ({reason}); nothing was changed{extra}")
        done.append(family)
    if after is not None:
        try:
            after()
        except PortscopeError as exc:
            undo_errors = _roll_back(backend, before, wanted, done)
            _drop_new_tables(backend, dumps, wanted, done)
            extra = (
                f"; rolling back the iptables rules failed ({undo_errors}): run `portscope apply`"
                if undo_errors
                else ""
            )
            raise type(exc)(f"{exc}{extra}") from None
    for family in FAMILIES:
        want = ours_only(wanted.get(family, {}))
        owned.set_chains(backend.name, family, [(t, c) for t, view in want.items() for c in view.chains])
        outcome.notes += _track_tables(backend, owned, family, dumps[family], want)
    return outcome


def _track_tables(backend: Backend, owned: Owned, family: Family, dump: OurView, want: OurView) -> list[str]:
    """Record the iptables-nft tables this commit created; drop recorded ones portscope no longer uses."""
    if backend.name != "iptables-nft":
        return []
    notes = []
    for table in want:
        if table not in dump:
            owned.set_table(backend.name, family, table, True)
    for table in owned.tables(backend.name, family) - set(want):
        note = drop_if_empty(family, table)
        notes += [note] if note else []
        owned.set_table(backend.name, family, table, False)
    return notes


def _drop_new_tables(
    backend: Backend, dumps: Mapping[Family, OurView], wanted: Mapping[Family, OurView], families: Sequence[Family]
) -> None:
    """After a roll-back: delete the iptables-nft tables the failed batch created, when they are empty."""
    if backend.name != "iptables-nft":
        return
    for family in families:
        for table in wanted.get(family, {}):
            if table not in dumps[family]:
                drop_if_empty(family, table)


def _roll_back(
    backend: Backend, before: Mapping[Family, OurView], wanted: Mapping[Family, OurView], families: Sequence[Family]
) -> str:
    """Put our part of each family back as it was; returns what failed, or ""."""
    errors = []
    for family in reversed(families):
        views = (before[family], wanted.get(family, {}))
        ours = {(t, c) for view in views for t, tv in view.items() for c in tv.chains}
        fresh = _only(parse_save(_run(backend.save_argv(family), None).stdout), ours)
        batch = build_batch(before[family], fresh)
        if not batch:
            continue
        result = _run(backend.restore_argv(family), batch, check=False)
        if result.returncode != 0:
            errors.append(f"{family}: {_one_line(result.stderr)}")
    return "; ".join(errors)


def _only(view: OurView, chains: set[tuple[str, str]]) -> OurView:
    """`view` restricted to the given (table, chain) pairs and the jumps into them."""
    out: OurView = {}
    for name, table in view.items():
        keep = TableView(builtin=set(table.builtin))
        keep.chains = {c: rules for c, rules in table.chains.items() if (name, c) in chains}
        keep.jumps = [j for j in table.jumps if jump_target(j.spec) in keep.chains]
        out[name] = keep
    return out


def _write_rank(name: str, wanted: OurView, current: OurView) -> tuple[int, str]:
    """Where a table goes in a batch. Each table is committed on its own, so a change that only adds to nat writes
    it last, once the filter, raw and mangle rules its packets need are in; any other change writes nat first (a
    DNAT removed or moved stops before the rules that went with it)."""
    rank = TABLE_ORDER.index(name) if name in TABLE_ORDER else len(TABLE_ORDER)
    if name == "nat":
        have, want = _entries(current.get(name)), _entries(wanted.get(name))
        if have < want:
            rank = len(TABLE_ORDER) + 1
    return rank, name


def _entries(view: TableView | None) -> set[tuple[str, str]]:
    """A table's rule lines and jumps, as ("rule", line) and (chain, spec)."""
    if view is None:
        return set()
    return {("rule", line) for line in view.rule_lines()} | {j.key for j in view.jumps}


def _lines(view: OurView) -> list[str]:
    out = []
    for name, table in ours_only(view).items():
        out += [f"-t {name} {line}" for line in table.rule_lines()]
        out += [f"-t {name} -A {j.chain} {j.spec}" for j in table.jumps]
    return out


def _run(argv: Sequence[str], stdin: str | None, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), input=stdin or "", capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"{argv[0]}: {exc}") from None
    if check and proc.returncode != 0:
        raise ToolError(f"{argv[0]}: {_one_line(proc.stderr) or proc.returncode} (run portscope as root)")
    return proc


def _one_line(text: str) -> str:
    """Tool output as one line, without the version banner iptables-nft-restore prints before an error."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(line for line in lines if not line.endswith("):") and not line.endswith(":"))[:400]
