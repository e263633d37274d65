"""portscope's nftables tables as `nft list table` prints them, and how they differ from the wanted view."""

from __future__ import annotations

from portscope.core.model import Family
from portscope.core.publish.nft_render import NFT_FAMILY, TABLE, NftView


def parse_listing(text: str) -> NftView:
    """Chains and their lines (declaration first) from `nft list table ip portscope` text."""
    view: NftView = {}
    chain: list[str] | None = None
    depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.endswith("{"):
            depth += 1
            words = line.split()
            chain = view.setdefault(words[1], []) if depth == 2 and words[0] == "chain" else None
        elif line == "}":
            depth -= 1
            chain = None
        elif chain is not None and depth == 2:
            chain.append(line)
    return {name: lines for name, lines in view.items() if lines}


def differences(family: Family, wanted: NftView, actual: NftView | None, where: str | None = None) -> list[str]:
    """One line per chain or rule that is wanted but missing, or present but unwanted (`where`: the table's
    name in the lines, when not `ip|ip6 portscope`)."""
    why = "no bindings need it" if where else f"no bindings of {family}"
    where = where or f"{NFT_FAMILY[family]} {TABLE}"
    if actual is None:
        return [f"missing table {where}"] if wanted else []
    if not wanted and actual:
        return [f"unexpected table {where} ({why})"]
    out: list[str] = []
    for chain in sorted(set(wanted) | set(actual)):
        want, have = wanted.get(chain, []), actual.get(chain, [])
        if chain not in actual:
            out.append(f"missing chain {where}/{chain}")
        elif chain not in wanted:
            out.append(f"unexpected chain {where}/{chain}")
        missing = [f"missing: {where}/{chain}: {line}" for line in want if line not in have]
        extra = [f"unexpected: {where}/{chain}: {line}" for line in have if line not in want]
        out += missing + extra
        if not missing and not extra and want != have:
            out.append(f"rules out of order (or repeated) in {where}/{chain}")
    return out


def rule_lines(family: Family, view: NftView | None) -> list[str]:
    """`ip portscope/forward: RULE` for every rule (declarations left out), for the audit log."""
    where = f"{NFT_FAMILY[family]} {TABLE}"
    return [f"{where}/{chain}: {line}" for chain, lines in (view or {}).items() for line in lines[1:]]
