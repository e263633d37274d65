"""What Docker's native nftables rules (`table ip|ip6 docker-bridges`) let portscope do.

Docker drops new forwarded connections to container ports it did not publish ("UNPUBLISHED PORT DROP"
at the end of `filter-forward-in__<bridge>`), and an accept in another table cannot override a drop.
With the daemon option `bridge-accept-fwmark` Docker first accepts packets carrying a mark:
`meta mark 0x00000002 accept` or, with a mask, `meta mark & 0x00000003 == 0x00000002 accept` (comment
"ALLOW FW MARK"). So portscope sets that mark on its DNATed flows when the rule is there, and otherwise refuses
a binding whose port Docker itself does not accept, saying which option to set.

The check reads the table as the snapshot parsed it (from nft's text or JSON: both give a mark match as nft
prints it). Of the forward chains it parses only the rules that can see the target's port (`Chain.select`):
the mark rule has no port match, and a rule for another port can neither drop nor accept the target's packets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from portscope.core.model import Chain, Family, Matches, PortRange, Rule, Table, no_stated_port
from portscope.core.publish.errors import UnsupportedError
from portscope.core.publish.focus import may_see, sees
from portscope.core.publish.nft_render import Mark
from portscope.core.publish.render import Placed

#: The start of the name of Docker's forward chain of each bridge in its native table (`filter-forward-in__docker0`).
FWD_IN = "filter-forward-in__"
#: Docker's docker-bridges table per family, as read (None: no such table).
DockerTables = Mapping[Family, Table | None]
#: What the refusal suggests (a bit unlikely to be used by anything else on the host).
SUGGESTED_MARK = "0x10000000/0x10000000"
#: A mark match as nft prints it: `meta mark 0x00000002`, `meta mark & 0x00000003 == 0x00000002`.
_MARK = re.compile(r"meta mark (?:& (0x[0-9a-f]{1,8}) == )?(0x[0-9a-f]{1,8})")


def accept_mark(table: Table | None) -> Mark | None:
    """The mark Docker's forward chains accept whatever else the packet is: an accept whose only match is the
    mark (`bridge-accept-fwmark`); None when there is none."""
    for chain in _forward_chains(table).values():
        for rule in chain.select(no_stated_port):  # a rule with no port match is always among these
            m = rule.matches
            if rule.verdict != "accept" or len(m.other) != 1 or m != Matches(other=m.other):
                continue
            found = _MARK.fullmatch(m.other[0])
            if found is not None:
                mask, value = found.groups()
                return Mark(int(value, 16), None if mask is None else int(mask, 16))
    return None


def drops_unpublished(table: Table | None, bridge: str, ip: str, protocol: str, port: int) -> bool:
    """True when Docker's forward chain for `bridge` drops packets to `port` and accepts nothing for
    ip:port/protocol."""
    chain = table.chains.get(FWD_IN + bridge) if table is not None else None
    if chain is None:
        return False
    ports = [PortRange(port, port)]
    rules = [rule for rule in chain.select(may_see(ports)) if sees(rule.matches, ports)]
    if not any(rule.verdict == "drop" for rule in rules):
        return False
    return not any(rule.verdict == "accept" and _accepts(rule, ip, protocol, port) for rule in rules)


def check_forwarding(table: Table | None, placed: list[Placed], family: str) -> Mark | None:
    """The mark to set on our DNATed flows; UnsupportedError when Docker would drop one and has no mark rule."""
    mark = accept_mark(table)
    if mark is not None or table is None:
        return mark
    for p in placed:
        b = p.binding
        if b.family != family or b.kind != "publish" or b.loopback or not p.bridge:
            continue
        if drops_unpublished(table, p.bridge, p.target_ip, b.protocol, b.container_port):
            raise UnsupportedError(
                f"Docker's nftables rules drop forwarded traffic to {p.target_ip}:{b.container_port}/{b.protocol} "
                f"(chain {FWD_IN}{p.bridge}: not published by Docker) and an accept elsewhere cannot override it: "
                f'set "bridge-accept-fwmark": "{SUGGESTED_MARK}" in /etc/docker/daemon.json, restart Docker, '
                "and run portscope again (nothing was changed)"
            )
    return None


def _forward_chains(table: Table | None) -> dict[str, Chain]:
    chains = table.chains if table is not None else {}
    return {name: chain for name, chain in chains.items() if name.startswith(FWD_IN)}


def _accepts(rule: Rule, ip: str, protocol: str, port: int) -> bool:
    """The rule matches destination `ip` and destination port `port` of `protocol` (nothing about the source)."""
    m = rule.matches
    to_ip = m.daddr is not None and not m.daddr.negated and m.daddr.network == ip
    to_port = m.dports == (PortRange(port, port),) and not m.dports_negated and m.protocol in (protocol, None)
    return to_ip and to_port and not m.protocol_negated
