"""The header line and the banner: who read what, when, and what a limited read could not see."""

from __future__ import annotations

from portscope.core.model import Snapshot


def taken_at_text(snap: Snapshot) -> str:
    """`2026-11-27 22:30:38 UTC` from the snapshot's ISO time (the clock is never read)."""
    text = snap.taken_at.replace("T", " ")
    for suffix in ("+00:00", "Z"):
        if text.endswith(suffix):
            return text[: -len(suffix)] + " UTC"
    return text


def backends_text(snap: Snapshot) -> str:
    """The firewall backends read that hold rules, e.g. `iptables-nft 43`."""
    totals: dict[str, int] = {}
    for b in snap.backends:
        if b.read:
            totals[b.backend] = totals.get(b.backend, 0) + b.rules
    shown = [f"{name} {n}" for name, n in totals.items() if n]
    if shown:
        return ", ".join(shown) + (" rule" if sum(totals.values()) == 1 else " rules")
    return "no rules read" if not totals else "no NAT rules"


def engine_text(snap: Snapshot) -> str:
    e = snap.engine
    if not e.reachable:
        return "no Docker"
    name = "Podman" if e.name and "podman" in e.name.lower() else "Docker"
    return f"{name} {(e.version or '?').split('+')[0]}"


def header_parts(snap: Snapshot) -> list[str]:
    """Host name, rules read, engine, root or not, time of the read."""
    return [
        snap.host.hostname,
        backends_text(snap),
        engine_text(snap),
        "root" if snap.host.is_root else "not root",
        taken_at_text(snap),
    ]


def banner_lines(snap: Snapshot) -> list[str]:
    """What a non-root (or otherwise limited) read hides, and why."""
    lines = list(snap.warnings)
    if not snap.host.is_root and not any("root" in w for w in lines):
        lines.insert(0, "not root: firewall rules and other users' processes are hidden (run with sudo)")
    return lines
