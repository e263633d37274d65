"""What portscope stores about its own bindings: publishes and blocks."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from portscope.core.model import Family, bracket

_KEY = re.compile(
    r"chain (?:iptables-nft|iptables-legacy) ipv[46] (?:nat|filter|raw|mangle) PORTSCOPE[A-Z-]{0,20}"
    r"|table iptables-nft ipv[46] (?:nat|filter|raw|mangle)|table nftables (?:ipv[46]|bridge) portscope"
)
_IFACE = re.compile(r"[A-Za-z0-9_.@:-]{1,15}")
Kind = Literal["publish", "block"]
#: ok: rules in force; waiting: the container is stopped (no IP, no rules); orphaned: the container is gone.
Health = Literal["ok", "waiting", "orphaned"]


@dataclass(slots=True)
class StoredBinding:
    """One binding portscope owns.

    publish: host_ip:host_port/protocol -> the container's (or `target_ip`'s) container_port.
    block: outside traffic to another owner's host_port/protocol (forwarded to container_port) is dropped.
    """

    id: str
    kind: Kind
    host_ip: str
    host_port: int
    protocol: str
    container_port: int
    container_id: str | None = None
    container_name: str | None = None
    target_ip: str | None = None  # a plain IP target (no container)
    last_ip: str | None = None  # the target address the rules were last written for
    bridge: str | None = None  # the interface the target sits behind, when known
    who: str = ""
    when: str = ""
    why: str | None = None
    health: Health = "ok"

    @property
    def family(self) -> Family:
        return "ipv6" if ":" in self.host_ip else "ipv4"

    @property
    def loopback(self) -> bool:
        return self.host_ip.startswith("127.")

    @property
    def target_label(self) -> str:
        return self.container_name or self.target_ip or "?"

    def describe(self) -> str:
        """`ps-1a2b3c4d publish 0.0.0.0:8081/tcp -> web:80`."""
        arrow = "->" if self.kind == "publish" else "blocked ->"
        return (
            f"{self.id} {self.kind} {bracket(self.host_ip)}:{self.host_port}/{self.protocol} {arrow} "
            f"{self.target_label}:{self.container_port}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredBinding:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(slots=True)
class State:
    bindings: list[StoredBinding] = field(default_factory=list)
    backend: str | None = None  # the firewall backend the bindings' rules were last written with
    #: What portscope created (`core.publish.owned` keys); None: a state from before this was recorded.
    created: list[str] | None = None
    #: bridge -> its route_localnet value before portscope set it to 1 (restored when no longer needed).
    localnet: dict[str, str] = field(default_factory=dict)

    def find(self, binding_id: str) -> StoredBinding | None:
        return next((b for b in self.bindings if b.id == binding_id), None)

    def extras(self) -> dict[str, Any]:
        """`created` and `localnet` as stored in state.json (left out when unset, as older versions wrote it)."""
        out: dict[str, Any] = {}
        if self.created is not None:
            out["created"] = sorted(self.created)
        if self.localnet:
            out["localnet"] = dict(sorted(self.localnet.items()))
        return out

    @staticmethod
    def parse_extras(data: dict[str, Any]) -> dict[str, Any]:
        """`created` and `localnet` from a state document; ValueError naming the field when one is malformed."""
        out: dict[str, Any] = {}
        created = data.get("created")
        if created is not None:
            if not isinstance(created, list) or not all(isinstance(k, str) and _KEY.fullmatch(k) for k in created):
                raise ValueError("created is not a list of portscope object keys")
            out["created"] = list(created)
        localnet = data.get("localnet")
        if localnet is not None:
            ok = isinstance(localnet, dict) and all(
                isinstance(k, str) and _IFACE.fullmatch(k) and v in ("0", "1") for k, v in localnet.items()
            )
            if not ok:
                raise ValueError('localnet is not a map of interface names to "0" or "1"')
            out["localnet"] = dict(localnet)
        return out


def binding_id(kind: Kind, host_ip: str, host_port: int, protocol: str) -> str:
    """A short id, stable for the same kind, host address, port and protocol: `ps-` + 8 hex digits."""
    digest = hashlib.sha256(f"{kind}|{host_ip}|{host_port}|{protocol}".encode()).hexdigest()
    return f"ps-{digest[:8]}"
