"""Who wrote a rule: recognised from chain and table names along the path that reaches it."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from portscope.core.model import Owner, Rule

#: portscope's own chains and nft table carry this prefix / name.
PORTSCOPE_PREFIX = "PORTSCOPE"


@lru_cache(maxsize=4096)
def owner_of_chain(table: str, chain: str) -> Owner | None:
    """The engine that owns a chain, or None for a chain no engine is known to use."""
    if chain.startswith(PORTSCOPE_PREFIX) or table == "portscope":
        return "portscope"
    if chain in ("DOCKER", "DOCKER-INGRESS") or table == "docker-bridges":
        return "docker"
    if chain.startswith("NETAVARK") or table == "netavark":
        return "podman"
    if chain == "CNI-HOSTPORT-DNAT" or chain.startswith("CNI-DN-"):
        return "cni-portmap"
    if chain.startswith("KUBE-"):
        return "kube-proxy"
    return None


def owner_of_path(path: Iterable[Rule]) -> Owner:
    """The owner of a DNAT reached through `path` (entry jump first, DNAT last).

    The chain nearest the DNAT that an engine owns decides; a DNAT reached only through
    chains no engine owns (PREROUTING, OUTPUT, a user's chain) is "manual".
    """
    for rule in reversed(path if isinstance(path, list | tuple) else list(path)):
        owner = owner_of_chain(rule.table, rule.chain)
        if owner is not None:
            return owner
    return "manual"
