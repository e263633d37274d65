"""The guard: a binding to a container forwards only through that container's own veth.

portscope's rules outlive their container: stop it, and a newcomer that takes its address (Docker 20.10
gives it the same MAC too) would get the binding's traffic. The host-side veth tells them apart: its
ifindex is new at every container start, and a stopped container's veth is gone. Two parts:

- every packet of a flow portscope DNATed for a guarded binding gets one mark bit (`GUARD_MARK`, set with
  a mask: no other bit changes) on the postrouting hook: iptables mangle `PORTSCOPE-MARK`, or the `guard`
  chain of the native `table ip|ip6 portscope`. The mark carries "portscope DNATed this flow" to the bridge
  layer, where conntrack matches need `nf_conntrack_bridge`, which not every kernel has;
- `table bridge portscope`, on the bridge output and forward hooks: a marked frame to the binding's address
  and port that leaves by any bridge port but the container's veth is dropped.

Rule lines are exactly what `nft list table` prints back (nftables 1.0; an `oif` that still exists is printed
by name and read back as its index). Everything in a line is validated: addresses through `ipaddress`,
ports as ints, protocols from a fixed set, ifindexes as ints, comments only from our ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from portscope.core.publish.validate import check_binding_id, check_port, check_rule_protocol, rule_address
from portscope.core.publish.veth import check_ifindex

if TYPE_CHECKING:
    from portscope.core.publish.render import Placed

#: The packet-mark bit of flows portscope DNATed for a guarded binding.
GUARD_MARK = 0x00200000
TABLE = "portscope"
WHERE = f"bridge {TABLE}"
#: The bridge table's base chains and their declaration lines.
CHAINS: dict[str, str] = {
    "output": "type filter hook output priority filter; policy accept;",
    "forward": "type filter hook forward priority filter; policy accept;",
}
_IP = {"ipv4": "ip", "ipv6": "ip6"}
#: chain name -> [declaration line, rule lines...] (as `nft_render.NftView`).
BridgeView = dict[str, list[str]]


def guarded(placed: Sequence[Placed]) -> list[Placed]:
    """The publish bindings that have their container's veth (the ones the guard covers)."""
    return [p for p in placed if p.link is not None and p.binding.kind == "publish"]


def bridge_rule(p: Placed) -> str:
    """Drop a marked frame to the binding's target that leaves by another port than the container's veth."""
    b = p.binding
    ip, proto, cport = _IP[b.family], check_rule_protocol(b.protocol), check_port(b.container_port)
    cip = rule_address(p.target_ip, b.family)
    mark = f"0x{GUARD_MARK:08x}"
    link = check_ifindex(p.link)
    return f"{ip} daddr {cip} {proto} dport {cport} meta mark & {mark} == {mark} oif != {link} drop {_comment(b.id)}"


def iptables_mark_rule(p: Placed) -> str:
    """Mark every packet of a flow DNATed from the binding's host port to its target (mangle, after `-A CHAIN`)."""
    b = p.binding
    proto, hport, cport = check_rule_protocol(b.protocol), check_port(b.host_port), check_port(b.container_port)
    cip = rule_address(p.target_ip, b.family)
    return (
        f"-d {cip}/{cip.max_prefixlen} -p {proto} -m {proto} --dport {cport} -m conntrack --ctstate DNAT "
        f'--ctorigdstport {hport} -m comment --comment "portscope:{check_binding_id(b.id)}" '
        f"-j MARK --set-xmark 0x{GUARD_MARK:x}/0x{GUARD_MARK:x}"
    )


def nft_mark_rule(p: Placed) -> str:
    """The same mark, for the `guard` chain of the native `table ip|ip6 portscope`."""
    b = p.binding
    ip, proto = _IP[b.family], check_rule_protocol(b.protocol)
    hport, cport = check_port(b.host_port), check_port(b.container_port)
    cip = rule_address(p.target_ip, b.family)
    return (
        f"{ip} daddr {cip} {proto} dport {cport} ct status dnat ct original proto-dst {hport} "
        f"meta mark set meta mark | 0x{GUARD_MARK:08x} {_comment(b.id)}"
    )


def bridge_view(placed: Sequence[Placed]) -> BridgeView:
    """The wanted content of `table bridge portscope` (empty: no table)."""
    rules = [bridge_rule(p) for p in guarded(placed)]
    return {name: [declaration, *rules] for name, declaration in CHAINS.items()} if rules else {}


def table_text(view: BridgeView) -> str:
    """`table bridge portscope { ... }` for an `nft -f` batch."""
    out = [f"table {WHERE} {{"]
    for name, lines in view.items():
        if name not in CHAINS:
            raise ValueError(f"chain {name!r}")
        out += [f"\tchain {name} {{", *(f"\t\t{line}" for line in lines), "\t}"]
    out.append("}")
    return "\n".join(out) + "\n"


def batch_lines(want: BridgeView, have: BridgeView | None, force: bool = False) -> list[str]:
    """The `nft -f` lines that replace our bridge table whole with `want` (none when it already holds it,
    unless `force`)."""
    unchanged = (have is None and not want) or (have is not None and bool(want) and have == want)
    if unchanged and not force:
        return []
    lines = [f"table {WHERE} {{}}", f"delete table {WHERE}"]
    if want:
        lines.append(table_text(want).rstrip("\n"))
    return lines


def rule_lines(view: BridgeView | None) -> list[str]:
    """`bridge portscope/output: RULE` for every rule, for the audit log."""
    return [f"{WHERE}/{chain}: {line}" for chain, lines in (view or {}).items() for line in lines[1:]]


def _comment(binding_id: str) -> str:
    return f'comment "portscope:{check_binding_id(binding_id)}"'
