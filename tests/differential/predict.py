"""What portscope's `list --json` says a probe gets: the binding whose `reach.packets` holds the probe packet.

Plain code over the documented JSON only; nothing here imports portscope.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from tests.differential import layout
from tests.differential.probe import Probe, answer

ANY_ADDRESS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Prediction:
    """The bindings whose reach holds the probe; `expected` is defined when exactly one does."""

    bindings: tuple[dict, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.bindings) > 1

    @property
    def uncertain(self) -> bool:
        return any(not reach_of(b).get("certain", True) for b in self.bindings)

    def expected(self, probe: Probe) -> str | None:
        """`responder:port` the single binding sends the probe to; None when no binding reaches it."""
        if not self.bindings:
            return None
        binding = self.bindings[0]
        responder = layout.RESPONDER_BY_IP.get(binding["target_ip"])
        return answer(responder.name if responder else binding["target_ip"], target_port(binding, probe.port))


def target_port(binding: dict, port: int) -> int:
    """The port a binding sends `port` to: unchanged (null), one port, or for a range binding
    (`8000-8010 -> 8000-8010`: a DNAT without a port) the same offset into the target range."""
    first, last = binding["target_port"], binding["target_port_last"]
    if first is None:
        return port
    if last is None or binding["host_port"] is None:
        return first
    return first + (port - binding["host_port"])


def predict(bindings: list[dict], probe: Probe) -> Prediction:
    return Prediction(tuple(b for b in bindings if b.get("family") == "ipv4" and reaches(b, probe)))


def reach_of(binding: dict) -> dict:
    """The binding's `reach` (null: no rule carries it, e.g. only a proxy: it catches no packet); without
    the field (a portscope before first-match reach), what its other fields claim: its protocol, port(s)
    and address, any interface and source, on each of its hooks."""
    if "reach" in binding:
        return binding["reach"] or {"certain": True, "packets": []}
    base: dict[str, Any] = {}
    if binding["protocol"] != "all":
        base["protocols"] = [binding["protocol"]]
    if binding["host_port"] is not None:
        base["ports"] = [[binding["host_port"], binding["host_port_last"] or binding["host_port"]]]
    if binding["host_ip"] not in ANY_ADDRESS:
        net = ipaddress.ip_network(binding["host_ip"], strict=False)
        base["daddr"] = [[str(net[0]), str(net[-1])]]
    return {"certain": True, "packets": [{"hook": hook, **base} for hook in binding["hooks"]]}


def reaches(binding: dict, probe: Probe) -> bool:
    return any(in_set(s, probe) for s in reach_of(binding)["packets"])


def in_set(s: dict, probe: Probe) -> bool:
    """The probe packet is in one packet set of a reach (a conjunction; an absent field is any value)."""
    return (
        s["hook"] == probe.hook
        and ("protocols" not in s or _protocol_in(s["protocols"], probe.protocol))
        and ("ports" not in s or any(lo <= probe.port <= hi for lo, hi in s["ports"]))
        and ("daddr" not in s or _address_in(s["daddr"], probe.daddr))
        and ("saddr" not in s or _address_in(s["saddr"], probe.saddr))
        and s.get("dst_local", True) is True  # a probe's destination is always one of the host's addresses
        and ("in_interfaces" not in s or any(_interface_in(alt, probe.iif or "") for alt in s["in_interfaces"]))
    )


def _protocol_in(protocols: list[str] | dict, protocol: str) -> bool:
    if isinstance(protocols, dict):
        return protocol not in protocols["except"]
    return protocol in protocols


def _address_in(ranges: list[list[str]], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for lo, hi in ranges:
        first, last = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
        if first.version == ip.version and first <= ip <= last:  # type: ignore[operator]
            return True
    return False


def _interface_in(alternative: dict, name: str) -> bool:
    """One alternative of `in_interfaces`. An output packet has no input interface: it is the empty name
    (what the kernel compares), which only an "any name but ..." alternative holds."""
    if "name" in alternative:
        return name == alternative["name"]
    if not name.startswith(alternative.get("prefix", "")):
        return False
    return not any(_pattern_matches(p, name) for p in alternative.get("except", ()))


def _pattern_matches(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern
