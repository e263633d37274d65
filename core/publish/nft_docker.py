"""What Docker's native nftables rules (`table ip|ip6 docker-bridges`, `nft -j` JSON) let portscope do.

Docker drops new forwarded connections to container ports it did not publish ("UNPUBLISHED PORT DROP"
at the end of `filter-forward-in__<bridge>`), and an accept in another table cannot override a drop.
With the daemon option `bridge-accept-fwmark` Docker first accepts packets carrying a mark:
`meta mark 2 accept` or, with a mask, `meta mark and 3 == 2 accept` (comment "ALLOW FW MARK").
So portscope sets that mark on its DNATed flows when the rule is there, and otherwise refuses a binding
whose port Docker itself does not accept, saying which option to set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from portscope.core.model import Family
from portscope.core.publish.errors import UnsupportedError
from portscope.core.publish.nft_render import Mark
from portscope.core.publish.render import Placed
from portscope.core.rules.live import FWD_IN
from portscope.core.rules.nft_json import chains_document

#: Docker's docker-bridges table per family as `nft -j` listings: the table whole, or its forward chains one
#: by one (None: no such table).
DockerTables = Mapping[Family, tuple[str, ...] | None]
#: What the refusal suggests (a bit unlikely to be used by anything else on the host).
SUGGESTED_MARK = "0x10000000/0x10000000"


def accept_mark(doc: dict[str, Any] | None) -> Mark | None:
    """The mark Docker's forward chains accept (from `nft -j list table ip docker-bridges`), if any."""
    for chain, rule in _rules(doc):
        if not chain.startswith(FWD_IN) or not _verdict(rule, "accept"):
            continue
        for match in _matches(rule):
            left, right = match.get("left"), match.get("right")
            if match.get("op", "==") != "==" or not isinstance(right, int):
                continue
            if _is_mark(left):
                return Mark(right)
            if isinstance(left, dict) and isinstance(left.get("&"), list) and len(left["&"]) == 2:
                key, mask = left["&"]
                if _is_mark(key) and isinstance(mask, int):
                    return Mark(right, mask)
    return None


def drops_unpublished(doc: dict[str, Any] | None, bridge: str, ip: str, protocol: str, port: int) -> bool:
    """True when Docker's forward chain for `bridge` ends in a drop and accepts nothing for ip:port/protocol."""
    chain_name = FWD_IN + bridge
    rules = [rule for chain, rule in _rules(doc) if chain == chain_name]
    if not any(_verdict(rule, "drop") for rule in rules):
        return False
    return not any(_verdict(rule, "accept") and _accepts(rule, ip, protocol, port) for rule in rules)


def check_forwarding(doc: dict[str, Any] | None, placed: list[Placed], family: str) -> Mark | None:
    """The mark to set on our DNATed flows; UnsupportedError when Docker would drop one and has no mark rule."""
    mark = accept_mark(doc)
    if mark is not None or doc is None:
        return mark
    for p in placed:
        b = p.binding
        if b.family != family or b.kind != "publish" or b.loopback or not p.bridge:
            continue
        if drops_unpublished(doc, p.bridge, p.target_ip, b.protocol, b.container_port):
            raise UnsupportedError(
                f"Docker's nftables rules drop forwarded traffic to {p.target_ip}:{b.container_port}/{b.protocol} "
                f"(chain {FWD_IN}{p.bridge}: not published by Docker) and an accept elsewhere cannot override it: "
                f'set "bridge-accept-fwmark": "{SUGGESTED_MARK}" in /etc/docker/daemon.json, restart Docker, '
                "and run portscope again (nothing was changed)"
            )
    return None


def forward_rules(text: str | None, placed: list[Placed]) -> dict[str, Any] | None:
    """Docker's table (`nft -j` text) as far as `check_forwarding` for `placed` reads it: the rules of its
    forward chains that name a mark, a drop or a placed target's address. Any other rule's JSON is not decoded
    (nor is one spelt with `\\u` escapes left out). ValueError when what it decodes is not JSON."""
    if text is None:
        return None
    words = ('"mark"', '"drop"', "\\u", *{f'"{p.target_ip}"' for p in placed})
    doc = chains_document(text, lambda chain: chain.startswith(FWD_IN), lambda rule: any(w in rule for w in words))
    return doc if isinstance(doc, dict) else None


def forward_rules_of(texts: Sequence[str] | None, placed: list[Placed]) -> dict[str, Any] | None:
    """`forward_rules` of one or more listings of Docker's table of one family (the whole table, or its forward
    chains listed one by one) as one document; None when there is no such table."""
    if texts is None:
        return None
    docs = [forward_rules(text, placed) for text in texts]
    return {"nftables": [item for doc in docs if doc is not None for item in doc.get("nftables", [])]}


def _rules(doc: dict[str, Any] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in (doc or {}).get("nftables", []):
        rule = item.get("rule") if isinstance(item, dict) else None
        if isinstance(rule, dict):
            yield str(rule.get("chain", "")), rule


def _matches(rule: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for expr in rule.get("expr", []):
        if isinstance(expr, dict) and isinstance(expr.get("match"), dict):
            yield expr["match"]


def _verdict(rule: dict[str, Any], name: str) -> bool:
    return any(isinstance(expr, dict) and name in expr for expr in rule.get("expr", []))


def _is_mark(expr: Any) -> bool:
    return isinstance(expr, dict) and expr.get("meta") == {"key": "mark"}


def _accepts(rule: dict[str, Any], ip: str, protocol: str, port: int) -> bool:
    """The rule matches destination `ip` and `protocol` destination port `port` (nothing about the source)."""
    daddr = dport = False
    for match in _matches(rule):
        payload = (match.get("left") or {}).get("payload") if isinstance(match.get("left"), dict) else None
        if match.get("op", "==") != "==" or not isinstance(payload, dict):
            continue
        field, proto, right = payload.get("field"), payload.get("protocol"), match.get("right")
        if field == "daddr" and proto in ("ip", "ip6") and right == ip:
            daddr = True
        elif field == "dport" and proto in (protocol, "th") and right == port:
            dport = True
    return daddr and dport
