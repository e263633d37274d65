"""Which firewall backend carries the engine's rules here; portscope writes its own rules with the same one.

iptables-nft when Docker's DOCKER chain is in iptables-nft's tables, iptables-legacy when it is in
the legacy tables, native nftables when a `docker-bridges` table exists (Docker's
`firewall-backend: nftables`) or when Podman's netavark uses its nftables driver (`table inet netavark`
and no NETAVARK chain in iptables), else whatever `iptables -V` says. The legacy tables are only read
when the kernel has them, so that reading never loads a legacy table into an iptables-nft host.
`--backend` overrides the detection; the backend bindings were written with is kept in the state.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from core.model import Family
from core.publish.errors import InputError, UnsupportedError
from core.tools import run_all, which

BackendName = Literal["iptables-nft", "iptables-legacy", "nftables"]
BACKENDS: tuple[BackendName, ...] = ("iptables-nft", "iptables-legacy", "nftables")
#: What `--backend` accepts.
CHOICES = ("auto", *BACKENDS)
_DOCKER_CHAIN = re.compile(r"^:DOCKER ", re.MULTILINE)
_ENGINE_CHAIN = re.compile(r"^:(?:DOCKER|NETAVARK)[A-Za-z0-9_-]* ", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Backend:
    """A firewall backend (an iptables flavour, or native nftables) and the tools that read and write it."""

    name: BackendName

    def tool(self, family: Family, kind: str) -> str:
        """Full path of e.g. `ip6tables-legacy-restore` (family ipv6, kind "restore")."""
        flavour = self.name.removeprefix("iptables-")
        base = "iptables" if family == "ipv4" else "ip6tables"
        name = f"{base}-{flavour}-{kind}"
        path = which(name)
        if path is None:
            raise UnsupportedError(f"{name} not found: install the iptables package")
        return path

    def save_argv(self, family: Family) -> list[str]:
        return [self.tool(family, "save")]

    def restore_argv(self, family: Family) -> list[str]:
        return [self.tool(family, "restore"), "--noflush", "-w", "30"]

    @property
    def native(self) -> bool:
        """True for native nftables (portscope's own `portscope` tables, written with `nft -f`)."""
        return self.name == "nftables"

    def check_writable(self) -> None:
        """UnsupportedError (one line, what to install) when the tool that writes this backend is missing."""
        if self.native and which("nft") is None:
            raise UnsupportedError("nft not found: install the nftables package (native nftables backend)")


def resolve_backend(choice: str = "auto", stored: str | None = None) -> Backend:
    """`--backend`: an explicit name wins, then the backend the stored bindings were written with, then detection."""
    if choice not in CHOICES:
        raise InputError(f"backend {choice!r} is not one of {', '.join(CHOICES)}")
    if choice != "auto":
        return Backend(choice)  # type: ignore[arg-type]
    if stored in BACKENDS:
        return Backend(stored)  # type: ignore[arg-type]
    return detect_backend()


def choose_backend(nft_nat: str, legacy_nat: str, nft_tables: str, version: str) -> BackendName:
    """The flavour from `iptables-nft-save -t nat`, `iptables-legacy-save -t nat`, `nft list tables`, `iptables -V`."""
    if _DOCKER_CHAIN.search(nft_nat):
        return "iptables-nft"
    if _DOCKER_CHAIN.search(legacy_nat):
        return "iptables-legacy"
    if re.search(r"^table \w+ docker-bridges$", nft_tables, re.MULTILINE):
        return "nftables"
    netavark = re.search(r"^table inet netavark$", nft_tables, re.MULTILINE)
    if netavark and not _ENGINE_CHAIN.search(nft_nat) and not _ENGINE_CHAIN.search(legacy_nat):
        return "nftables"
    return "iptables-legacy" if "legacy" in version else "iptables-nft"


def detect_backend(proc: str = "/proc", timeout: float = 20.0) -> Backend:
    """Ask the kernel (see the module doc); missing tools count as empty output."""
    names = {}
    for key, tool in (("nft_save", "iptables-nft-save"), ("legacy_save", "iptables-legacy-save"), ("nft", "nft")):
        names[key] = which(tool)
    iptables = which("iptables")
    commands: list[list[str]] = []
    keys: list[str] = []
    if names["nft_save"]:
        commands.append([names["nft_save"], "-t", "nat"])
        keys.append("nft_nat")
    if names["legacy_save"] and _legacy_nat_loaded(proc):
        commands.append([names["legacy_save"], "-t", "nat"])
        keys.append("legacy_nat")
    if names["nft"]:
        commands.append([names["nft"], "list", "tables"])
        keys.append("nft_tables")
    if iptables:
        commands.append([iptables, "-V"])
        keys.append("version")
    out = {
        key: result.stdout if result.ok else "" for key, result in zip(keys, run_all(commands, timeout), strict=True)
    }
    return Backend(
        choose_backend(
            out.get("nft_nat", ""), out.get("legacy_nat", ""), out.get("nft_tables", ""), out.get("version", "")
        )
    )


def _legacy_nat_loaded(proc: str) -> bool:
    try:
        with open(os.path.join(proc, "net", "ip_tables_names"), encoding="ascii") as f:
            return "nat" in f.read().split()
    except OSError:
        return False
