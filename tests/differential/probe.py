"""The probe grid: which packets each side sends, and the answer a probe can get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tests.differential import layout

Side = Literal["a", "b", "host"]
SIDES: tuple[Side, ...] = ("a", "b", "host")


@dataclass(frozen=True)
class Probe:
    """One packet: from `side` (client a on ext0, client b on ext1, or the host itself) to daddr:port."""

    side: Side
    protocol: str
    saddr: str
    daddr: str
    port: int

    @property
    def hook(self) -> str:
        return "output" if self.side == "host" else "prerouting"

    @property
    def iif(self) -> str | None:
        """The interface the packet arrives on; None for the host's own (OUTPUT) packets."""
        return {"a": layout.EXT_A, "b": layout.EXT_B}.get(self.side)

    def __str__(self) -> str:
        via = f"in {self.iif}" if self.iif else "output"
        return f"{self.protocol} {self.saddr} -> {self.daddr}:{self.port} ({self.side}, {via})"


#: Per side: (source, destination) pairs. The host binds its source explicitly.
DESTINATIONS: dict[Side, tuple[tuple[str, str], ...]] = {
    "a": ((layout.CLIENT_A, layout.HOST_A), (layout.CLIENT_A, layout.HOST_EXTRA)),
    "b": ((layout.CLIENT_B, layout.HOST_B), (layout.CLIENT_B, layout.HOST_EXTRA)),
    "host": (
        (layout.HOST_EXTRA, layout.HOST_A),
        (layout.HOST_EXTRA, layout.HOST_EXTRA),
        (layout.LOOPBACK, layout.LOOPBACK),
    ),
}


def grid() -> list[Probe]:
    """Every side x destination x protocol x grid port."""
    return [
        Probe(side, protocol, saddr, daddr, port)
        for side in SIDES
        for saddr, daddr in DESTINATIONS[side]
        for protocol in layout.PROTOCOLS
        for port in layout.GRID_PORTS
    ]


def answer(responder: str, port: int) -> str:
    """What a responder replies: its name and the port the packet reached it on."""
    return f"{responder}:{port}"
