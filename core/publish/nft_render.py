"""portscope's native nftables tables (`table ip portscope`, `table ip6 portscope`), rendered from the bindings.

The same semantics as `render.py` (iptables), in base chains of our own tables:

- `prerouting` (nat, dstnat): DNAT for non-loopback bindings, guarded by `fib daddr type local`;
- `output` (nat, -100): the same DNATs for the host's own traffic, plus the loopback (127.x) bindings;
- `postrouting` (nat, srcnat): hairpin MASQUERADE, and the 127.0.0.0/8 one of loopback bindings;
- `forward` (filter, `filter - 10`): block DROPs first, then ACCEPTs for our DNATed flows. A drop in any
  base chain is final, so a block works whatever other tables do; an accept is not final, so it only
  helps where nothing else drops. Running before `filter` (Docker's priority) lets the accept rules set
  the mark Docker's `bridge-accept-fwmark` rule accepts, before Docker's chain looks at the packet;
- `raw` (filter prerouting, raw): DROP packets for a loopback binding that did not come from `lo`;
- `guard` (filter postrouting, mangle): the mark of flows the bridge-level guard covers (`guard.py`).

Each rule line is exactly what `nft list table` prints back (nftables 1.0), so the rendered view and a
listing compare line by line. Everything in a line is validated here: addresses through `ipaddress`,
ports as ints, protocols from a fixed set, interface names by pattern, comments only from our ids.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from portscope.core.model import Family
from portscope.core.publish.guard import guarded, nft_mark_rule
from portscope.core.publish.render import Placed
from portscope.core.publish.validate import check_binding_id, check_iface, check_port, check_rule_protocol, rule_address

TABLE = "portscope"
#: nft family keyword per address family.
NFT_FAMILY: dict[Family, str] = {"ipv4": "ip", "ipv6": "ip6"}
#: Our base chains, in the order they are written, with their declaration lines.
CHAINS: dict[str, str] = {
    "prerouting": "type nat hook prerouting priority dstnat; policy accept;",
    "output": "type nat hook output priority -100; policy accept;",
    "postrouting": "type nat hook postrouting priority srcnat; policy accept;",
    "forward": "type filter hook forward priority filter - 10; policy accept;",
    "raw": "type filter hook prerouting priority raw; policy accept;",
    "guard": "type filter hook postrouting priority mangle; policy accept;",
}
_MASK32 = 0xFFFFFFFF

#: chain name -> [declaration line, rule lines...]; a chain with no rules is absent, an empty view is no table.
NftView = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Mark:
    """A firewall mark (and optional mask) that Docker's `bridge-accept-fwmark` rule accepts."""

    value: int
    mask: int | None = None

    def __post_init__(self) -> None:
        for v in (self.value, self.mask if self.mask is not None else 0):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MASK32:
                raise ValueError(f"firewall mark {v!r}")

    def statement(self) -> str:
        """The statement that makes the packet's mark match Docker's rule, as nft prints it."""
        if self.mask is None:
            return f"meta mark set 0x{self.value:08x}"
        bits = self.value & self.mask
        keep = (~self.mask | bits) & _MASK32  # nft folds the bits being set into the and-mask
        and_part = "" if keep == _MASK32 else f" & 0x{keep:08x}"  # and nft leaves out what does nothing
        or_part = f" | 0x{bits:08x}" if bits else ""
        return f"meta mark set meta mark{and_part}{or_part}"


def render_nft(placed: list[Placed], family: Family, mark: Mark | None = None) -> NftView:
    """The wanted content of our table for `family` (empty: no table)."""
    rules: dict[str, list[str]] = {name: [] for name in CHAINS}
    drops: list[str] = []
    for p in placed:
        b = p.binding
        if b.family != family:
            continue
        if b.kind == "publish":
            for chain, line in _publish(p, family, mark):
                rules[chain].append(line)
        else:
            drops.append(_block(p, family))
    rules["forward"] = drops + rules["forward"]
    rules["guard"] = [nft_mark_rule(p) for p in guarded(placed) if p.binding.family == family]
    return {name: [CHAINS[name], *lines] for name, lines in rules.items() if lines}


def table_text(family: Family, view: NftView) -> str:
    """`table ip portscope { ... }` for an `nft -f` batch."""
    out = [f"table {NFT_FAMILY[family]} {TABLE} {{"]
    for name, lines in view.items():
        if name not in CHAINS:
            raise ValueError(f"chain {name!r}")
        out.append(f"\tchain {name} {{")
        out += [f"\t\t{line}" for line in lines]
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


def _publish(p: Placed, family: Family, mark: Mark | None) -> list[tuple[str, str]]:
    b = p.binding
    ip, proto = NFT_FAMILY[family], check_rule_protocol(b.protocol)
    hport, cport = check_port(b.host_port), check_port(b.container_port)
    cip = _addr(p.target_ip, family)
    host = _addr(b.host_ip, family, target=False)
    comment = _comment(b.id)
    to = f"{cip}:{cport}" if family == "ipv4" else f"[{cip}]:{cport}"
    dnat = f"{proto} dport {hport} fib daddr type local dnat to {to} {comment}"
    if b.loopback:
        return [
            ("output", f"{ip} daddr {host} {proto} dport {hport} dnat to {to} {comment}"),
            ("postrouting", f"{ip} saddr 127.0.0.0/8 {ip} daddr {cip} {proto} dport {cport} masquerade {comment}"),
            ("raw", f'{ip} daddr {host} iifname != "lo" {proto} dport {hport} drop {comment}'),
        ]
    loopback_net = "127.0.0.0/8" if family == "ipv4" else "::1"
    dst = f"{ip} daddr != {loopback_net}" if ipaddress.ip_address(host).is_unspecified else f"{ip} daddr {host}"
    set_mark = f"{mark.statement()} " if mark else ""
    return [
        ("prerouting", f"{dst} {dnat}"),
        ("output", f"{dst} {dnat}"),
        ("postrouting", f"{ip} saddr {cip} {ip} daddr {cip} {proto} dport {cport} masquerade {comment}"),
        (
            "forward",
            f"{ip} daddr {cip} {proto} dport {cport} ct status dnat ct original proto-dst {hport} "
            f"{set_mark}accept {comment}",
        ),
    ]


def _block(p: Placed, family: Family) -> str:
    """DROP forwarded traffic that came in on host_port (conntrack's original destination) to the target."""
    b = p.binding
    ip, proto = NFT_FAMILY[family], check_rule_protocol(b.protocol)
    hport, cport = check_port(b.host_port), check_port(b.container_port)
    cip = _addr(p.target_ip, family)
    host = _addr(b.host_ip, family, target=False)
    iface = f'iifname != "{check_iface(p.bridge)}" ' if p.bridge else ""
    orig = "" if ipaddress.ip_address(host).is_unspecified else f" ct original {ip} daddr {host}"
    return f"{ip} daddr {cip} {iface}{proto} dport {cport} ct original proto-dst {hport}{orig} drop {_comment(b.id)}"


def _addr(text: str, family: Family, target: bool = True) -> str:
    return str(rule_address(text, family, target=target))


def _comment(binding_id: str) -> str:
    return f'comment "portscope:{check_binding_id(binding_id)}"'
