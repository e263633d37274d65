"""A finding: something wrong or worth knowing about the host's published ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from portscope.core.model import Rule, Socket

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(slots=True)
class Finding:
    """One diagnosis, with the evidence that proves it and a command that fixes it.

    `kind` is a stable identifier (e.g. "shadowed-rule"); `title` one line; `explanation`
    one paragraph in plain words; `fix` a command or instruction the user can run.
    """

    kind: str
    severity: Severity
    title: str
    explanation: str
    fix: str
    rules: list[Rule] = field(default_factory=list)
    processes: list[Socket] = field(default_factory=list)
    container: str | None = None  # the container's name
    bindings: list[str] = field(default_factory=list)  # ids of the bindings concerned
    port: int | None = None
    protocol: str | None = None

    @property
    def sort_key(self) -> tuple:
        return (SEVERITY_ORDER[self.severity], self.kind, self.port or 0, self.title)
