"""Remove an iptables-nft table portscope brought into being (e.g. `raw`, ip6 `nat`) once it is empty again.

iptables-nft creates a table, and its base chains, the first time a rule names it. When portscope's
last chain in such a table goes, the table is deleted only if nothing but empty iptables base chains
is left in it: a rule or chain of anyone else's keeps it.
"""

from __future__ import annotations

import subprocess

from portscope.core.model import Family
from portscope.core.tools import which

_NFT_FAMILY = {"ipv4": "ip", "ipv6": "ip6"}
_BASE_CHAINS = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}


def is_empty(listing: str) -> bool:
    """True for `nft list table` text holding only iptables base chains without rules."""
    for raw in listing.splitlines():
        line = raw.strip()
        if not line or line == "}" or line.startswith("table "):
            continue
        if line.startswith("chain ") and line.endswith("{"):
            if line.split()[1] not in _BASE_CHAINS:
                return False
            continue
        if line.startswith("type ") and line.endswith("policy accept;"):
            continue
        return False
    return True


def drop_if_empty(family: Family, table: str) -> str | None:
    """Delete the iptables-nft table when it is empty; returns a note, or None when nothing was done."""
    nft = which("nft")
    if nft is None or table not in ("raw", "nat", "filter", "mangle"):
        return None
    argv = [nft, "list", "table", _NFT_FAMILY[family], table]
    listed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if listed.returncode != 0 or not is_empty(listed.stdout):
        return None
    argv = [nft, "delete", "table", _NFT_FAMILY[family], table]
    if subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).returncode != 0:
        return None
    return f"removed the empty {_NFT_FAMILY[family]} {table} table portscope had created"
