"""Loading a ruleset into the host namespace with one backend, and resetting it between rulesets."""

from __future__ import annotations

from typing import Literal

from tests.differential import render_iptables, render_nft
from tests.differential.model import Ruleset
from tests.sandbox.netns import NetNs

Backend = Literal["iptables-nft", "iptables-legacy", "nftables"]
BACKENDS: tuple[Backend, ...] = ("iptables-nft", "iptables-legacy", "nftables")
RESTORE = {"iptables-nft": "iptables-nft-restore", "iptables-legacy": "iptables-legacy-restore"}
#: Binaries the harness runs, for `need_root_tools`.
TOOLS = ("ip", "nsenter", "sysctl", "conntrack", "nft", *RESTORE.values(), "iptables-nft", "iptables-legacy-save")


class LoadError(RuntimeError):
    """The kernel (or the tool) refused the ruleset."""


def render(backend: Backend, ruleset: Ruleset) -> str:
    return render_nft.render(ruleset) if backend == "nftables" else render_iptables.render(ruleset)


def load(host: NetNs, backend: Backend, text: str) -> None:
    """Replace the nat table with `text` (iptables-restore input, or an nft table) in one transaction."""
    if backend == "nftables":
        _run(host, ["nft", "-f", "-"], render_nft.loadable(text))
    else:
        _run(host, [RESTORE[backend], "-w"], text)


def clear(host: NetNs, backend: Backend) -> None:
    """An empty nat table, and no connection tracked from before: every probe's first packet meets the rules."""
    if backend == "nftables":
        _run(host, ["nft", "-f", "-"], render_nft.clear())
    else:
        _run(host, [RESTORE[backend], "-w"], render_iptables.empty())
    _run(host, ["conntrack", "-F"], None)


def _run(host: NetNs, argv: list[str], stdin: str | None) -> None:
    proc = host.run(argv, check=False, input=stdin, timeout=60)
    if proc.returncode != 0:
        raise LoadError(f"{' '.join(argv)}: {proc.stderr.strip()}")
