"""portscope's first-match reach against the kernel, on a fixed slice of random rulesets (tests/differential).

Each backend loads the same 100 rulesets (seed SEED) into a host namespace of its own; every grid probe
(two clients and the host itself, TCP and UDP) must get exactly the answer portscope's `list --json`
predicts. A failure prints each failing ruleset, its probes and a regression test to paste. The kernel must
also agree with the harness's own rule model: if not, the harness is wrong, not portscope.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import need_root_tools
from tests.differential import report, topology
from tests.differential.backend import BACKENDS, TOOLS, Backend
from tests.differential.predict import in_set
from tests.differential.probe import Probe
from tests.differential.run import run_all

SEED = 20250611
RULESETS = range(100)  # per backend; about 0.2 s each, so well within the 3 minutes CI gives it
SHOWN = 3


@pytest.mark.parametrize("which", BACKENDS)
def test_portscope_reach_agrees_with_the_kernel(which: Backend) -> None:
    need_root_tools(*TOOLS)
    runs = run_all([which], SEED, RULESETS)
    assert not _leftover_namespaces()
    failed = [r for r in runs if report.failed(r)]
    details = "\n\n".join(report.details(r) for r in failed[:SHOWN])
    assert not failed, f"{report.summary(runs)}\n\n{details}"


def _leftover_namespaces() -> list[str]:
    mine = f"{topology.PREFIX}{os.getpid()}x"
    return [n for n in os.listdir("/run/netns") if n.startswith(mine)] if os.path.isdir("/run/netns") else []


def test_a_probe_is_in_a_packet_set_only_when_every_field_holds() -> None:
    """The membership test on the contract's own example (no root needed)."""
    s = {
        "hook": "prerouting",
        "protocols": ["tcp"],
        "ports": [[8080, 8080], [9000, 9010]],
        "daddr": [["10.0.0.0", "10.255.255.255"]],
        "dst_local": True,
        "saddr": [["10.91.1.0", "10.91.1.255"]],
        "in_interfaces": [{"name": "ext1"}, {"prefix": "ex", "except": ["ext1", "ext0"]}],
    }
    assert not in_set(s, Probe("a", "tcp", "10.91.1.2", "10.91.1.1", 9005))  # ext0 is excepted
    assert not in_set(s, Probe("b", "tcp", "10.91.2.2", "10.91.2.1", 9005))  # ext1 is named, the source is not
    assert in_set({**s, "saddr": [["10.91.2.2", "10.91.2.2"]]}, Probe("b", "tcp", "10.91.2.2", "10.91.2.1", 9005))
    assert in_set({**s, "in_interfaces": [{"except": ["docker0"]}]}, Probe("a", "tcp", "10.91.1.2", "10.91.1.1", 8080))
    assert not in_set({**s, "in_interfaces": [{"except": ["e+"]}]}, Probe("a", "tcp", "10.91.1.2", "10.91.1.1", 8080))
    assert not in_set({**s, "protocols": {"except": ["tcp"]}}, Probe("a", "tcp", "10.91.1.2", "10.91.1.1", 8080))
    assert not in_set({**s, "dst_local": False}, Probe("a", "tcp", "10.91.1.2", "10.91.1.1", 8080))
    output = {"hook": "output", "protocols": ["udp"], "in_interfaces": [{"except": ["docker0"]}]}
    assert in_set(output, Probe("host", "udp", "127.0.0.1", "127.0.0.1", 80))  # no input interface: the empty name
