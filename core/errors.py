"""portscope's own errors. OS and tool errors are turned into these at the edge.

Every message is one line that says what went wrong and what to do.
"""

from __future__ import annotations


class PortscopeError(Exception):
    """Base class: `str(err)` is the one-line message shown to the user."""

    exit_code = 1


class ParseError(PortscopeError):
    """Rule text that could not be parsed; carries the 1-based line number."""

    exit_code = 3

    def __init__(self, message: str, line: int | None = None, source: str | None = None) -> None:
        self.line = line
        self.source = source
        where = f"{source or 'input'}:{line}: " if line is not None else (f"{source}: " if source else "")
        super().__init__(f"{where}{message}")


class NotRootError(PortscopeError):
    exit_code = 4


class EngineError(PortscopeError):
    """The container engine could not be reached or answered with an error."""

    exit_code = 5


class SnapshotError(PortscopeError):
    """A capture file that is missing, unreadable or of an unknown schema."""

    exit_code = 2


class ToolError(PortscopeError):
    """An external tool (iptables-save, nft) failed or is missing."""

    exit_code = 6
