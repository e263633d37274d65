"""Large rule dumps made by code, for the memory and time bounds of issue 11."""

from __future__ import annotations

import json


def huge_nft_json(rules: int) -> bytes:
    """`nft -j list ruleset` of Docker 29's nftables layout with `rules` DNATs (130,000: ~50 MB).

    As nft 1.0.6 prints it: ports cycle over 60,000 (so three in four DNATs past the first 60,000
    are shadowed by an earlier one on the same port), each DNAT to its own container address.
    """
    table = {"family": "ip", "table": "docker-bridges"}
    jump = {"jump": {"target": "nat-prerouting-and-output"}}
    local = {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}
    counter = {"counter": {"packets": 0, "bytes": 0}}
    not_loopback = {
        "match": {
            "op": "!=",
            "left": {"payload": {"protocol": "ip", "field": "daddr"}},
            "right": {"prefix": {"addr": "127.0.0.0", "len": 8}},
        }
    }
    items: list[dict] = [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"table": {"family": "ip", "name": "docker-bridges", "handle": 1}},
        {"chain": {**table, "name": "nat-prerouting-and-output", "handle": 1}},
        {"chain": {**table, "name": "nat-PREROUTING", "handle": 2, "type": "nat", "hook": "prerouting",
                   "prio": -100, "policy": "accept"}},
        {"chain": {**table, "name": "nat-OUTPUT", "handle": 3, "type": "nat", "hook": "output", "prio": -100,
                   "policy": "accept"}},
    ]  # fmt: skip
    for n in range(rules):
        address = f"172.{17 + n // 62500}.{n // 250 % 250}.{n % 250 + 2}"
        expr = [
            {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "docker0"}},
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                    "right": 1024 + n % 60000,
                }
            },
            counter,
            {"dnat": {"addr": address, "port": 80}},
        ]
        items.append({"rule": {**table, "chain": "nat-prerouting-and-output", "handle": 4 + n, "expr": expr}})
    items.append({"rule": {**table, "chain": "nat-PREROUTING", "handle": 4 + rules, "expr": [local, counter, jump]}})
    items.append(
        {"rule": {**table, "chain": "nat-OUTPUT", "handle": 5 + rules, "expr": [not_loopback, local, counter, jump]}}
    )
    return json.dumps({"nftables": items}, separators=(", ", ": ")).encode() + b"\n"
