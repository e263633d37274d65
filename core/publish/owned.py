"""What portscope created, so that it changes nothing else: its chains (per backend, family and table),
the iptables-nft tables it brought into being, and its nftables tables.

The record lives in the state (`State.created`). Names alone prove nothing: a chain called
`PORTSCOPE-MINE` made by someone else is foreign and left alone. A state written before the record
existed (bindings, no `created`) is migrated by content: a chain with one of portscope's names whose
every rule carries a `portscope:ps-…` comment is taken as portscope's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from portscope.core.model import Family
from portscope.core.publish.render import OUR_CHAINS
from portscope.core.publish.saved import OurView, TableView, jump_target

_TAGGED = re.compile(r'--comment "?portscope:ps-[0-9a-f]{8}"?(?: |$)')
#: The key of the guard's `table bridge portscope`.
BRIDGE_KEY = "table nftables bridge portscope"
_NFT_TAGGED = re.compile(r'comment "portscope:ps-[0-9a-f]{8}"$')


@dataclass(slots=True)
class Owned:
    """Keys of what portscope created: `chain BACKEND FAMILY TABLE CHAIN` or `table BACKEND FAMILY TABLE`
    (`table nftables bridge portscope`: the guard's table)."""

    created: set[str] = field(default_factory=set)
    adopt: bool = False  # the state predates the record: claim portscope-shaped chains by their content

    @classmethod
    def from_state(cls, created: Iterable[str] | None) -> Owned:
        return cls(adopt=True) if created is None else cls(set(created))

    def chain_is_ours(self, backend: str, family: Family, table: str, chain: str, rules: list[str]) -> bool:
        if f"chain {backend} {family} {table} {chain}" in self.created:
            return True
        if not self.adopt or chain not in OUR_CHAINS.get(table, ()):
            return False
        return bool(rules) and all(_TAGGED.search(rule) for rule in rules)

    def set_chains(self, backend: str, family: Family, chains: Iterable[tuple[str, str]]) -> None:
        """After a commit: exactly these (table, chain) pairs are portscope's on this backend and family."""
        prefix = f"chain {backend} {family} "
        self.created = {k for k in self.created if not k.startswith(prefix)}
        self.created |= {f"{prefix}{table} {chain}" for table, chain in chains}

    def tables(self, backend: str, family: Family) -> set[str]:
        prefix = f"table {backend} {family} "
        return {k.removeprefix(prefix) for k in self.created if k.startswith(prefix)}

    def set_table(self, backend: str, family: Family, table: str, created: bool) -> None:
        key = f"table {backend} {family} {table}"
        if created:
            self.created.add(key)
        else:
            self.created.discard(key)

    def nft_table_is_ours(self, family: Family, lines: list[str]) -> bool:
        """portscope's native `table ip|ip6 portscope` (`lines`: every chain's rule lines, declarations left out)."""
        if f"table nftables {family} portscope" in self.created:
            return True
        return self.adopt and bool(lines) and all(_NFT_TAGGED.search(line) for line in lines)

    def bridge_is_ours(self, lines: list[str]) -> bool:
        """portscope's `table bridge portscope` (the guard; `lines`: its rule lines)."""
        if BRIDGE_KEY in self.created:
            return True
        return self.adopt and bool(lines) and all(_NFT_TAGGED.search(line) for line in lines)

    def set_bridge(self, created: bool) -> None:
        if created:
            self.created.add(BRIDGE_KEY)
        else:
            self.created.discard(BRIDGE_KEY)


def claim(view: OurView, owned: Owned, backend: str, family: Family) -> tuple[OurView, list[str]]:
    """portscope's part of a parsed dump (its chains and the jumps into them) and the foreign look-alikes."""
    mine: OurView = {}
    foreign: list[str] = []
    for name, table in view.items():
        keep = TableView(builtin=set(table.builtin))
        for chain, rules in table.chains.items():
            if owned.chain_is_ours(backend, family, name, chain, rules):
                keep.chains[chain] = rules
            else:
                foreign.append(f"{family} {name} chain {chain}")
        keep.jumps = [j for j in table.jumps if jump_target(j.spec) in keep.chains]
        mine[name] = keep
    return mine, foreign


def taken_names(wanted: OurView, dump: OurView, mine: OurView) -> list[str]:
    """Chains portscope wants whose name another object already has (`table/chain`)."""
    out = []
    for name, table in wanted.items():
        have, ours = dump.get(name, TableView()), mine.get(name, TableView())
        out += [f"{name}/{c}" for c in table.chains if c in have.builtin and c not in ours.chains]
    return out
