"""The abstract NAT rule model that both renderers (iptables-restore text, nft text) start from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["dnat", "return", "accept", "drop", "jump", "goto"]
PortStyle = Literal["single", "range", "multi"]
ENTRY_CHAINS = ("PREROUTING", "OUTPUT")


@dataclass(frozen=True)
class Ports:
    """Destination ports: one port, one range (`8000:8010`) or a multiport list of ports and ranges."""

    ranges: tuple[tuple[int, int], ...]
    style: PortStyle

    def __contains__(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ranges)


@dataclass(frozen=True)
class Match:
    """A rule's matches; None = no such match. `ports` needs a positive `protocol` (as in iptables)."""

    protocol: str | None = None
    protocol_negated: bool = False
    ports: Ports | None = None
    ports_negated: bool = False
    daddr: str | None = None  # CIDR
    daddr_negated: bool = False
    saddr: str | None = None
    saddr_negated: bool = False
    iif: str | None = None  # iptables pattern: a trailing "+" is a prefix
    iif_negated: bool = False
    dst_local: bool | None = None  # addrtype --dst-type LOCAL / fib daddr type local
    mark: int | None = None  # a match portscope does not model


@dataclass(frozen=True)
class Rule:
    """One rule: matches and a verdict (`chain` for jump/goto, `to_ip`/`to_port` for dnat)."""

    match: Match = field(default_factory=Match)
    verdict: Verdict = "accept"
    chain: str | None = None
    to_ip: str | None = None
    to_port: int | None = None


@dataclass
class Ruleset:
    """The nat table: entry chains first, then user chains in an order every jump and goto follows (acyclic)."""

    chains: dict[str, list[Rule]]

    @property
    def user_chains(self) -> list[str]:
        return [name for name in self.chains if name not in ENTRY_CHAINS]

    def uses_drop(self) -> bool:
        return any(r.verdict == "drop" for rules in self.chains.values() for r in rules)
