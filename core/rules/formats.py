"""Recognise a rule dump's format and parse it: iptables-save / -S text, nft text, nft JSON."""

from __future__ import annotations

from portscope.core.model import Family, RuleSource, Table
from portscope.core.rules.iptables_text import parse_iptables_text


def detect_format(text: str) -> str:
    """Which parser a dump needs: "nft-json", "nft-text" or "iptables-save" (also `iptables -S`)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "nft-json"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        return "nft-text" if line.startswith("table ") else "iptables-save"
    return "iptables-save"


def parse_source(source: RuleSource, skipped: list[int] | None = None) -> list[Table]:
    """Parse a source by its recorded format.

    `skipped` (`list`, a one-item counter): of iptables text keep only the nat chains bindings come
    from and count the other rule lines, which are checked and let go (a large dump then costs
    memory for its DNAT chains only)."""
    if source.format == "nft-json":
        from portscope.core.rules.nft_json import parse_nft_json

        return parse_nft_json(source.text, source=source.origin, lazy=source.backend != "dump")
    if source.format == "nft-text":
        from portscope.core.rules.nft_text import parse_nft_text

        return parse_nft_text(source.text, source=source.origin, lazy=source.backend != "dump")
    family: Family | None = source.family if source.family in ("ipv4", "ipv6") else None
    return parse_iptables_text(
        source.text, backend=source.backend, family=family, source=source.origin, skipped=skipped
    )


def load_dump(path: str, text: str) -> RuleSource:
    """A rule dump file as a source (backend "dump"), its format detected from the text."""
    return RuleSource(backend="dump", family=None, format=detect_format(text), text=text, origin=path)
