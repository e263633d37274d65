"""Which firewall backend carries the engine's rules here; portscope writes its own rules with the same one.

iptables-nft when Docker's DOCKER chain is in iptables-nft's tables, iptables-legacy when it is in
the legacy tables, native nftables when a `docker-bridges` table exists (Docker's
`firewall-backend: nftables`), the iptables flavour that holds netavark's NETAVARK-HOSTPORT-DNAT,
native nftables when Podman's netavark uses its nftables driver (`table inet netavark`
and no NETAVARK chain in iptables), else whatever `iptables -V` says. The legacy tables are only read
when the kernel has them, so that reading never loads a legacy table into an iptables-nft host.
Where an engine's rules are found, portscope writes on their backend only (its accepts must pass the
engine's forward drop, which rules on another backend cannot do): another `--backend` is refused, and
bindings stored on another backend are moved. Without them, `--backend` overrides the detection and
the backend bindings were written with is kept in the state.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from portscope.core.model import Family
from portscope.core.publish.errors import InputError, UnsupportedError
from portscope.core.tools import run_all, which

BackendName = Literal["iptables-nft", "iptables-legacy", "nftables"]
BACKENDS: tuple[BackendName, ...] = ("iptables-nft", "iptables-legacy", "nftables")
#: What `--backend` accepts.
CHOICES = ("auto", *BACKENDS)
_DOCKER_CHAIN = re.compile(r"^:DOCKER ", re.MULTILINE)
_NETAVARK_CHAIN = re.compile(r"^:NETAVARK-HOSTPORT-DNAT ", re.MULTILINE)
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


@dataclass(frozen=True, slots=True)
class Detection:
    """Where the engine's rules are (`engine`, None when no engine's rules were found, with the evidence)
    and the flavour `iptables -V` names (`fallback`)."""

    engine: BackendName | None
    fallback: BackendName
    evidence: str = ""


def resolve_backend(choice: str = "auto", stored: str | None = None, detected: Detection | None = None) -> Backend:
    """`--backend`: where an engine's rules are found, its backend (an explicit other one is refused: its rules
    would sit behind the engine's forward drop); else an explicit name, the stored bindings' one, `iptables -V`'s."""
    if choice not in CHOICES:
        raise InputError(f"backend {choice!r} is not one of {', '.join(CHOICES)}")
    found = detected if detected is not None else detect()
    if found.engine is not None:
        if choice not in ("auto", found.engine):
            raise UnsupportedError(
                f"--backend {choice}: the engine's rules are in {found.engine} here ({found.evidence}), and "
                f"traffic that must pass them would not reach rules on {choice}; use --backend auto (nothing was "
                "changed)"
            )
        return Backend(found.engine)
    if choice in BACKENDS:  # not "auto"
        return Backend(choice)
    if stored in BACKENDS:
        return Backend(stored)
    return Backend(found.fallback)


def engine_backend(nft_nat: str, legacy_nat: str, nft_tables: str) -> tuple[BackendName | None, str]:
    """The backend an engine's rules are in, from `iptables-nft-save -t nat`, `iptables-legacy-save -t nat` and
    `nft list tables` (or `nft list chains`: the same tables, without loading every rule), and the evidence;
    (None, "") when no engine's rules are there."""
    if _DOCKER_CHAIN.search(nft_nat):
        return "iptables-nft", "Docker's DOCKER chain in iptables-nft"
    if _DOCKER_CHAIN.search(legacy_nat):
        return "iptables-legacy", "Docker's DOCKER chain in iptables-legacy"
    if re.search(r"^table \w+ docker-bridges(?: \{)?$", nft_tables, re.MULTILINE):
        return "nftables", "Docker's docker-bridges nftables table"
    flavours: tuple[tuple[BackendName, str], ...] = (("iptables-nft", nft_nat), ("iptables-legacy", legacy_nat))
    for name, nat in flavours:
        if _NETAVARK_CHAIN.search(nat):
            return name, f"netavark's NETAVARK chains in {name}"
    netavark = re.search(r"^table inet netavark(?: \{)?$", nft_tables, re.MULTILINE)
    if netavark and not _ENGINE_CHAIN.search(nft_nat) and not _ENGINE_CHAIN.search(legacy_nat):
        return "nftables", "netavark's nftables table"
    return None, ""


def choose_backend(nft_nat: str, legacy_nat: str, nft_tables: str, version: str) -> BackendName:
    """The flavour from `iptables-nft-save -t nat`, `iptables-legacy-save -t nat`, `nft list tables`, `iptables -V`."""
    engine, _ = engine_backend(nft_nat, legacy_nat, nft_tables)
    return engine or _by_version(version)


def _by_version(version: str) -> BackendName:
    return "iptables-legacy" if "legacy" in version else "iptables-nft"


def detect_backend(proc: str = "/proc", timeout: float = 20.0) -> Backend:
    """The backend to write: the engine's, else what `iptables -V` says (see the module doc)."""
    found = detect(proc, timeout)
    return Backend(found.engine or found.fallback)


def detect(proc: str = "/proc", timeout: float = 20.0) -> Detection:
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
        commands.append([names["nft"], "list", "chains"])  # `list tables` loads every rule
        keys.append("nft_tables")
    if iptables:
        commands.append([iptables, "-V"])
        keys.append("version")
    out = {
        key: result.stdout if result.ok else "" for key, result in zip(keys, run_all(commands, timeout), strict=True)
    }
    engine, evidence = engine_backend(out.get("nft_nat", ""), out.get("legacy_nat", ""), out.get("nft_tables", ""))
    return Detection(engine, _by_version(out.get("version", "")), evidence)


def _legacy_nat_loaded(proc: str) -> bool:
    try:
        with open(os.path.join(proc, "net", "ip_tables_names"), encoding="ascii") as f:
            return "nat" in f.read().split()
    except OSError:
        return False
