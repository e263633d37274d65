"""Replay one ruleset text and one probe in a topology of their own: what a regression test calls."""

from __future__ import annotations

from tests.differential import topology
from tests.differential.backend import Backend
from tests.differential.probe import Probe
from tests.differential.run import CONFIRM_TIMEOUT, Outcome, check_text


def replay(which: Backend, text: str, probe: Probe, *, timeout: float = CONFIRM_TIMEOUT) -> Outcome:
    """Load `text` with backend `which`, run portscope and send `probe`; everything is removed afterwards."""
    topo = topology.start()
    try:
        outcomes, _ = check_text(topo, which, text, [probe], timeout)
    finally:
        topology.stop(topo)
    return outcomes[0]
