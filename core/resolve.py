"""From NAT tables to bindings: walk every path from the entry chains to each DNAT.

Entry chains are the nat chains the kernel enters for packets to this host: iptables' nat
PREROUTING and OUTPUT, and nft base chains of type nat on the prerouting and output hooks.
The walk follows jumps and gotos, accumulates each path's conditions (`PathCondition`), drops
paths that contradict themselves, and stops a chain after a rule that matches everything and
ends it. Cost is linear in the rules reached from each entry chain.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.model import Binding, Chain, Family, Owner, Rule, Table, UnreachableDnat
from core.owners import owner_of_chain, owner_of_path
from core.path_condition import PathCondition, network
from core.record import field, record

ENTRY_HOOKS = ("prerouting", "output")
_TERMINAL = frozenset({"dnat", "redirect", "return", "accept", "drop", "reject", "goto", "snat", "masquerade"})
_ANY_ADDRESS: dict[Family, str] = {"ipv4": "0.0.0.0", "ipv6": "::"}
_LOOPBACK: dict[Family, str] = {"ipv4": "127.0.0.1", "ipv6": "::1"}
_ANY_PORT = (None,)


@record
class Catch:
    """One DNAT as one entry hook reaches it: the path's condition and its place in evaluation order."""

    table: Table
    hook: str
    order: int  # evaluation order within (table, hook)
    rule: Rule
    condition: PathCondition
    path: tuple[Rule, ...]


@record
class Resolution:
    """Bindings carried by DNAT rules, DNAT rules that carry no host binding, and every catch."""

    bindings: list[Binding] = field(default_factory=list)
    unreachable: list[UnreachableDnat] = field(default_factory=list)
    catches: list[Catch] = field(default_factory=list)


def resolve(tables: Iterable[Table], host_addresses: Iterable[str] = (), catches: bool = True) -> Resolution:
    """Every DNAT binding reachable from an entry chain, merged by key across hooks.

    `catches=False` skips recording each path's catch (only the diagnosis of shadowed rules needs them).
    """
    local = {a.split("%")[0] for a in host_addresses}
    merged: dict[tuple, Binding] = {}
    reached: set[int] = set()
    virtual: dict[int, UnreachableDnat] = {}
    found: list[Catch] | None = [] if catches else None
    replays: _Replays | None = None if catches else {}
    all_dnats: list[Rule] = []
    for table in tables:
        all_dnats.extend(
            r for c in table.chains.values() if c.may_dnat for r in c.rules if r.verdict in ("dnat", "redirect")
        )
        for chain in table.chains.values():
            if chain.hook in ENTRY_HOOKS and chain.kind == "nat":
                walker = _Walker(table, chain.hook, local, merged, reached, virtual, found, replays)
                walker.walk(chain, PathCondition(family=_table_family(table)), [], frozenset())
    result = Resolution(bindings=list(merged.values()), catches=found or [])
    for rule in all_dnats:
        if id(rule) in virtual:
            result.unreachable.append(virtual[id(rule)])
        elif id(rule) not in reached:
            result.unreachable.append(UnreachableDnat(rule, "no entry chain (PREROUTING/OUTPUT) reaches this rule"))
    return result


def _table_family(table: Table) -> Family | None:
    return None if table.family == "inet" else table.family  # type: ignore[return-value]


#: id(chain) -> (the condition it was walked with, its DNATs with the bindings each carried); see `_Walker.walk`.
_Replays = dict[int, tuple[PathCondition, list[tuple[Rule, list[Binding]]]]]


class _Walker:
    """Depth-first walk of one table from one entry chain."""

    def __init__(
        self,
        table: Table,
        hook: str,
        local: set[str],
        merged: dict[tuple, Binding],
        reached: set[int],
        virtual: dict[int, UnreachableDnat],
        catches: list[Catch] | None,
        replays: _Replays | None = None,
    ) -> None:
        self.replays = replays
        self.table = table
        self.hook = hook
        self.local = local
        self.merged = merged
        self.reached = reached
        self.virtual = virtual
        self.catches = catches

    def walk(self, chain: Chain, cond: PathCondition, path: list[Rule], stack: frozenset[str]) -> None:
        """Walk `chain` with the path condition `cond`, emitting each DNAT it reaches.

        Docker's DOCKER chain is entered from PREROUTING and again from OUTPUT, whose jump adds only
        `! -d 127.0.0.0/8`. A chain with no jumps and no destination matches reaches the very same
        DNATs under both, so the second walk only adds its hook and jump to the bindings the first one's
        DNATs carried, instead of matching every rule again (when catches are not recorded: they need
        each path's own condition).
        """
        emitted: list[tuple[Rule, list[Binding]]] | None = None
        if self.replays is not None and _replayable(chain):
            seen = self.replays.get(id(chain))
            if seen is not None and _same_but_exclusions(seen[0], cond):
                hook = self.hook
                for rule, carried in seen[1]:
                    for binding in carried:
                        if hook not in binding.hooks:
                            binding.hooks.append(hook)
                        _add_evidence(binding, path, rule)
                return
            if seen is None:
                emitted = []
                self.replays[id(chain)] = (cond, emitted)
        stack = stack | {chain.name}
        chains = self.table.chains
        add = cond.add
        lean = self.catches is None  # a DNAT's own constraints matter only to a catch
        via_owner = owner_of_path(path)  # the owner of a DNAT here whose own chain no engine owns
        for rule in chain.rules:
            verdict = rule.verdict
            matches = rule.matches
            dnat = verdict == "dnat" or verdict == "redirect"
            here = add(matches, lean) if dnat else add(matches)
            if here is not None:
                if dnat:
                    carried = self.emit(rule, here, path, via_owner)
                    if emitted is not None and carried:
                        emitted.append((rule, carried))
                elif (verdict == "jump" or verdict == "goto") and rule.jump:
                    target = chains.get(rule.jump)
                    if target is not None and rule.jump not in stack:
                        self.walk(target, here, [*path, rule], stack)
            if matches.unconditional and verdict in _TERMINAL:
                break

    def emit(self, rule: Rule, cond: PathCondition, via: list[Rule], via_owner: Owner) -> list[Binding]:
        """Record the binding(s) a DNAT reached with `cond` through the jumps `via` carries; returns them.

        `via_owner`: `owner_of_path(via)`, computed once per chain walked.
        """
        carried: list[Binding] = []
        family = _binding_family(rule, cond)
        if family is None:
            return carried
        rule_id = id(rule)
        host_ip = _ANY_ADDRESS[family] if cond.daddr is None else _host_ip(cond, family)
        if host_ip is None or not (cond.daddr is None or cond.dst_local or self._is_local(host_ip, cond)):
            self.virtual.setdefault(
                rule_id,
                UnreachableDnat(rule, f"destination {cond.daddr} is not an address of this host", "virtual-ip"),
            )
            return carried
        self.reached.add(rule_id)
        if self.virtual:
            self.virtual.pop(rule_id, None)
        if self.catches is not None:
            self.catches.append(Catch(self.table, self.hook, len(self.catches), rule, cond, (*via, rule)))
        protocol = cond.protocol or "all"
        nat = rule.nat
        target_ip = nat.address if nat and nat.address else _LOOPBACK[family]
        to_ports = nat.ports if nat else None
        merged = self.merged
        hook = self.hook
        for ports in cond.dports or _ANY_PORT:
            if ports is None:
                first = last = None
            else:
                first = ports.first
                last = ports.last if ports.last != first else None
            if to_ports is not None:
                t_first, t_last = to_ports.first, (to_ports.last if to_ports.last != to_ports.first else None)
            else:
                t_first, t_last = first, last
            key = (family, protocol, host_ip, first, last, target_ip, t_first, t_last)
            binding = merged.get(key)
            if binding is None:
                path = [*via, rule]
                owner = owner_of_chain(rule.table, rule.chain) or via_owner  # = owner_of_path(path)
                merged[key] = binding = Binding(
                    family, protocol, host_ip, first, target_ip, t_first, owner, last, t_last,
                    ["dnat"], rules=path, hooks=[hook],
                )  # fmt: skip
                carried.append(binding)
                continue
            if hook not in binding.hooks:
                binding.hooks.append(hook)
            _add_evidence(binding, via, rule)
            carried.append(binding)
        return carried

    def _is_local(self, host_ip: str, cond: PathCondition) -> bool:
        """A DNAT for a destination that is not this host's is a service VIP, not a published port."""
        if cond.daddr is None or cond.dst_local:
            return True
        net = network(cond.daddr)
        if net is None:
            return False
        return net.is_loopback or host_ip in self.local


def _replayable(chain: Chain) -> bool:
    """No jumps and no destination matches: the excluded destinations of a path change nothing here."""
    return all(r.matches.daddr is None and r.verdict not in ("jump", "goto") for r in chain.rules)


def _same_but_exclusions(a: PathCondition, b: PathCondition) -> bool:
    """Equal conditions, except perhaps for the excluded destinations."""
    return (
        a.protocol == b.protocol
        and a.dports == b.dports
        and a.daddr == b.daddr
        and a.dst_local == b.dst_local
        and a.family == b.family
        and a.conditional == b.conditional
        and a.constraints == b.constraints
    )


def _add_evidence(binding: Binding, via: list[Rule], final: Rule) -> None:
    """Add a path's rules to the evidence: the jumps that reach the DNAT first, the DNAT last."""
    rules = binding.rules
    if rules[-1] is not final and not _holds(rules, final):
        rules.append(final)  # a second DNAT for the same binding
    for jump in via:
        if not _holds(rules, jump):
            rules.insert(len(rules) - 1, jump)


def _holds(rules: list[Rule], rule: Rule) -> bool:
    """`rule` itself (not an equal one) is in `rules`; a loop, 3x faster than any() on these short lists."""
    for r in rules:  # noqa: SIM110
        if r is rule:
            return True
    return False


def _binding_family(rule: Rule, cond: PathCondition) -> Family | None:
    if rule.family in ("ipv4", "ipv6"):
        return rule.family  # type: ignore[return-value]
    if rule.nat_family is not None:
        return rule.nat_family
    if cond.family is not None:
        return cond.family
    address = rule.nat.address if rule.nat else None
    if address:
        return "ipv6" if ":" in address else "ipv4"
    return None


def _host_ip(cond: PathCondition, family: Family) -> str | None:
    """The host address the path is restricted to, "0.0.0.0"/"::" for all; None if not one address."""
    if cond.daddr is None:
        return _ANY_ADDRESS[family]
    net = network(cond.daddr)
    if net is None:
        return None
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net)
