"""The findings that name each binding, and the worst severity among them (the TUI's ✖/▲ column, `list`)."""

from __future__ import annotations

from collections.abc import Iterable

from portscope.core.findings import SEVERITY_ORDER, Finding


def findings_by_binding(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    """Binding id -> the findings that name it, in the diagnosis' order, each once."""
    out: dict[str, list[Finding]] = {}
    for f in findings:
        for bid in dict.fromkeys(f.bindings):
            out.setdefault(bid, []).append(f)
    return out


def finding_kinds(by_binding: dict[str, list[Finding]]) -> dict[str, list[str]]:
    """Binding id -> the kinds of its findings, each once (`findings` in `list --json`)."""
    return {bid: list(dict.fromkeys(f.kind for f in found)) for bid, found in by_binding.items()}


def worst(findings: Iterable[Finding]) -> str | None:
    """The most severe severity among `findings`, or None."""
    return min((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__, default=None)
