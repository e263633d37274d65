"""Errors of publish/unpublish, each with its exit status and a one-line message saying what to do."""

from __future__ import annotations

from portscope.core.errors import PortscopeError, ToolError


class InputError(PortscopeError):
    """Bad input: a malformed port spec, address, protocol, reason or container reference."""

    exit_code = 2


class ConflictError(InputError):
    """The host port is already in use (a binding, a listener, a finding); `--force` overrides."""


class RuleRefusedError(ToolError):
    """The kernel (or iptables-restore) refused the batch; the firewall was left as it was."""

    exit_code = 6


class UnsupportedError(ToolError):
    """This host's firewall backend cannot carry portscope's rules (native nftables)."""

    exit_code = 6
