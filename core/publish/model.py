"""What portscope stores about its own bindings: publishes and blocks."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from core.model import Family, bracket

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

    def find(self, binding_id: str) -> StoredBinding | None:
        return next((b for b in self.bindings if b.id == binding_id), None)


def binding_id(kind: Kind, host_ip: str, host_port: int, protocol: str) -> str:
    """A short id, stable for the same kind, host address, port and protocol: `ps-` + 8 hex digits."""
    digest = hashlib.sha256(f"{kind}|{host_ip}|{host_port}|{protocol}".encode()).hexdigest()
    return f"ps-{digest[:8]}"
