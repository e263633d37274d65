"""portscope's chains, rendered completely from the stored bindings and their targets' current addresses.

Rule text is exactly what `iptables-save` prints back, so the rendered view can be compared with a
dump line by line. Everything that goes into a line is validated here again: addresses through
`ipaddress`, ports as ints, protocols from a fixed set, interface names by pattern, comments only
from our own ids.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from portscope.core.model import Family
from portscope.core.publish.guard import guarded, iptables_mark_rule
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.saved import Jump, OurView, TableView
from portscope.core.publish.validate import check_binding_id, check_iface, check_port, check_rule_protocol, rule_address

NAT = "PORTSCOPE"
NAT_OUTPUT = "PORTSCOPE-OUTPUT"  # loopback-only DNATs: jumped from OUTPUT, never from PREROUTING
POSTROUTING = "PORTSCOPE-POSTROUTING"
FORWARD = "PORTSCOPE-FORWARD"
RAW = "PORTSCOPE-RAW"  # drops loopback-addressed packets that did not come from lo
MARK = "PORTSCOPE-MARK"  # mangle: marks guarded flows for the bridge-level guard (core.publish.guard)
#: The chains portscope may create, per table (it owns one only when the state records creating it).
OUR_CHAINS: dict[str, frozenset[str]] = {
    "nat": frozenset({NAT, NAT_OUTPUT, POSTROUTING}),
    "filter": frozenset({FORWARD}),
    "raw": frozenset({RAW}),
    "mangle": frozenset({MARK}),
}
#: The comment on every jump portscope adds into its chains.
JUMP_TAG = '-m comment --comment "portscope:jump"'
_LOCAL_JUMP = f"-m addrtype --dst-type LOCAL {JUMP_TAG} -j "


@dataclass(frozen=True, slots=True)
class Placed:
    """A binding with the address its target has now, the interface it sits behind (if known) and the
    ifindex of its container's host-side veth (when the guard covers it)."""

    binding: StoredBinding
    target_ip: str
    bridge: str | None = None
    link: int | None = None


def render(placed: list[Placed], family: Family, tables_present: dict[str, set[str]]) -> OurView:
    """The wanted view of our chains for one family. `tables_present` maps a table to its chains now
    (to jump from DOCKER-USER where it exists, else FORWARD)."""
    mine = [p for p in placed if p.binding.family == family]
    nat: list[str] = []
    post: list[str] = []
    out_nat: list[str] = []
    fwd_drop: list[str] = []
    fwd_accept: list[str] = []
    raw: list[str] = []
    for p in mine:
        b = p.binding
        if b.kind == "publish":
            rules = _publish(p, family)
            (out_nat if b.loopback else nat).append(rules["dnat"])
            post.append(rules["masq"])
            if b.loopback:
                raw.append(rules["raw"])
            else:
                fwd_accept.append(rules["accept"])
        else:
            fwd_drop.append(_block(p, family))
    view: OurView = {}
    if nat or out_nat or post:
        t = view.setdefault("nat", TableView())
        if nat:
            t.chains[NAT] = [f"-A {NAT} {r}" for r in nat]
            t.jumps += [Jump("PREROUTING", _LOCAL_JUMP + NAT), Jump("OUTPUT", _LOCAL_JUMP + NAT)]
        if out_nat:
            t.chains[NAT_OUTPUT] = [f"-A {NAT_OUTPUT} {r}" for r in out_nat]
            t.jumps.append(Jump("OUTPUT", f"-d 127.0.0.0/8 {JUMP_TAG} -j {NAT_OUTPUT}"))
        t.chains[POSTROUTING] = [f"-A {POSTROUTING} {r}" for r in post]
        t.jumps.append(Jump("POSTROUTING", f"{JUMP_TAG} -j {POSTROUTING}"))
    if fwd_drop or fwd_accept:
        t = view.setdefault("filter", TableView())
        t.chains[FORWARD] = [f"-A {FORWARD} {r}" for r in fwd_drop + fwd_accept]
        parent = "DOCKER-USER" if "DOCKER-USER" in tables_present.get("filter", set()) else "FORWARD"
        t.jumps.append(Jump(parent, f"{JUMP_TAG} -j {FORWARD}"))
    if raw:
        t = view.setdefault("raw", TableView())
        t.chains[RAW] = [f"-A {RAW} {r}" for r in raw]
        t.jumps.append(Jump("PREROUTING", f"{JUMP_TAG} -j {RAW}"))
    marks = [iptables_mark_rule(p) for p in guarded(mine)]
    if marks:
        t = view.setdefault("mangle", TableView())
        t.chains[MARK] = [f"-A {MARK} {r}" for r in marks]
        t.jumps.append(Jump("POSTROUTING", f"{JUMP_TAG} -j {MARK}"))
    return view


def _publish(p: Placed, family: Family) -> dict[str, str]:
    b = p.binding
    proto, hport, cport = check_rule_protocol(b.protocol), check_port(b.host_port), check_port(b.container_port)
    cip = _addr(p.target_ip, family)
    comment = _comment(b.id)
    port_match = f"-p {proto} -m {proto} --dport"
    host = rule_address(b.host_ip, family, target=False)
    loopback_net = "127.0.0.0/8" if family == "ipv4" else "::1/128"
    dst = f"! -d {loopback_net}" if host.is_unspecified else f"-d {_host(host)}"
    to = f"{cip}:{cport}" if family == "ipv4" else f"[{cip}]:{cport}"
    src = "127.0.0.0/8" if b.loopback else _host(ipaddress.ip_address(cip))
    return {
        "dnat": f"{dst} {port_match} {hport} {comment} -j DNAT --to-destination {to}",
        "masq": f"-s {src} -d {_host(ipaddress.ip_address(cip))} {port_match} {cport} {comment} -j MASQUERADE",
        "accept": f"-d {_host(ipaddress.ip_address(cip))} {port_match} {cport} {comment} -j ACCEPT",
        "raw": f"-d {_host(host)} ! -i lo {port_match} {hport} {comment} -j DROP",
    }


def _block(p: Placed, family: Family) -> str:
    """DROP outside traffic that came in through host_port (conntrack's original port) to the target."""
    b = p.binding
    proto, hport, cport = check_rule_protocol(b.protocol), check_port(b.host_port), check_port(b.container_port)
    cip = _host(ipaddress.ip_address(_addr(p.target_ip, family)))
    iface = f"! -i {check_iface(p.bridge)} " if p.bridge else ""
    return (
        f"-d {cip} {iface}-p {proto} -m {proto} --dport {cport} -m conntrack --ctorigdstport {hport} "
        f"{_comment(b.id)} -j DROP"
    )


def _addr(text: str, family: Family) -> str:
    return str(rule_address(text, family))


def _host(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"{addr}/{addr.max_prefixlen}"


def _comment(binding_id: str) -> str:
    return f'-m comment --comment "portscope:{check_binding_id(binding_id)}"'
