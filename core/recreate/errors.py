"""Errors of `portscope recreate`, each a one-line message saying what to do."""

from __future__ import annotations

from portscope.core.errors import EngineError
from portscope.core.publish.errors import InputError


class RecreateRefused(InputError):
    """The container cannot or should not be recreated (Compose, host network, --rm, a bad port change)."""


class RecreateFailed(EngineError):
    """A step of the swap failed; the original container was put back as it was."""
