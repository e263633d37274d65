"""The tools that print the kernel's rules, and which of them `read_rules` runs first."""

from __future__ import annotations

import os
from collections.abc import Callable

from portscope.core.model import Family
from portscope.core.tools import which

#: (family, iptables-nft save tool, iptables-nft itself)
NFT_SAVE_TOOLS: tuple[tuple[Family, str, str], ...] = (
    ("ipv4", "iptables-nft-save", "iptables-nft"),
    ("ipv6", "ip6tables-nft-save", "ip6tables-nft"),
)
#: (family, /proc/net file naming the kernel's legacy tables, iptables-legacy save tool)
LEGACY_SAVE_TOOLS: tuple[tuple[Family, str, str], ...] = (
    ("ipv4", "ip_tables_names", "iptables-legacy-save"),
    ("ipv6", "ip6_tables_names", "ip6tables-legacy-save"),
)


def legacy_tables(path: str) -> list[str] | None:
    """The iptables-legacy tables the kernel has in this network namespace; None if unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read().split()
    except PermissionError:
        return None
    except OSError:
        return []  # the module is not loaded: no legacy tables


def iptables_nft_command(
    save: str, tool: str, scope: str = "all", find: Callable[[str], str | None] = which
) -> tuple[str, ...] | None:
    """The command that prints iptables-nft's rules of one family; None when neither tool is installed.

    `scope="nat"`: `iptables-nft -t nat -S`, which fetches only the nat table from the kernel
    (0.17 s against 0.28 s for `iptables-nft-save` with 10,000 published ports). Same rule lines.
    `find` finds a tool (on another host, for core.fleet).
    """
    if scope == "nat":
        path = find(tool)
        if path:
            return (path, "-t", "nat", "-S")
    path = find(save)
    return (path,) if path else None


def first_stage_commands(proc: str = "/proc", scope: str = "all") -> list[tuple[str, ...]]:
    """The commands `read_rules(proc, scope=scope)` runs at once when it reads every table in one stage (for
    bench/probe.py, which times each alone, beside the commands its sources name: a read table by table runs
    `nft list chains` first, then `iptables-nft -t TABLE -S` for each table and the rest at once)."""
    commands: list[tuple[str, ...]] = []
    for _family, save, tool in NFT_SAVE_TOOLS:
        command = iptables_nft_command(save, tool, scope)
        if command:
            commands.append(command)
    for _family, names, tool in LEGACY_SAVE_TOOLS:
        path = which(tool)
        if path and legacy_tables(os.path.join(proc, "net", names)):
            commands.append((path,))
    nft = which("nft")
    if nft:
        commands.append((nft, "list", "chains"))
    return commands
