"""The rule model's own first-match evaluation of a probe: a check on the harness, independent of portscope.

The kernel's answer must equal this for every probe; a difference means the harness (topology, rendering,
probing) or this model of iptables/nft semantics is wrong, not portscope.
"""

from __future__ import annotations

import ipaddress

from tests.differential import layout
from tests.differential.model import Match, Ruleset
from tests.differential.probe import Probe, answer

ENTRY = {"prerouting": "PREROUTING", "output": "OUTPUT"}


def expected_answer(ruleset: Ruleset, probe: Probe) -> str | None:
    """The answer the probe gets under first-match semantics: `responder:port`, or None (no NAT, accept, drop)."""
    outcome = _run(ruleset, ENTRY[probe.hook], probe)
    if outcome is None or outcome[0] != "dnat":
        return None
    _, ip, port = outcome
    return answer(layout.RESPONDER_BY_IP[ip].name, port if port is not None else probe.port)


def _run(ruleset: Ruleset, chain: str, probe: Probe) -> tuple | None:
    """A terminal outcome ("dnat", ip, port) / ("accept",) / ("drop",), or None when the chain returns."""
    for rule in ruleset.chains[chain]:
        if not matches(rule.match, probe):
            continue
        match rule.verdict:
            case "return":
                return None
            case "jump":
                outcome = _run(ruleset, str(rule.chain), probe)
                if outcome is not None:
                    return outcome
            case "goto":
                return _run(ruleset, str(rule.chain), probe)  # its RETURN returns from this chain too
            case "dnat":
                return ("dnat", rule.to_ip, rule.to_port)
            case verdict:
                return (verdict,)
    return None


def matches(m: Match, probe: Probe) -> bool:
    """Every match of `m` holds for the probe packet (mark 0; its destination is always a local address)."""
    checks = [
        m.protocol is None or (probe.protocol == m.protocol) != m.protocol_negated,
        m.ports is None or (probe.protocol == m.protocol and (probe.port in m.ports) != m.ports_negated),
        m.daddr is None or _in(probe.daddr, m.daddr) != m.daddr_negated,
        m.saddr is None or _in(probe.saddr, m.saddr) != m.saddr_negated,
        m.iif is None or _iif_matches(m.iif, probe.iif or "") != m.iif_negated,
        m.dst_local is None or m.dst_local,
        m.mark is None or m.mark == 0,
    ]
    return all(checks)


def _in(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


def _iif_matches(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern
