"""The host side of a container's interface: the ifindex of the veth peer, new at every container start.

The engine names the container's network namespace (`NetworkSettings.SandboxKey`, else `/proc/PID/ns/net`);
`nsenter --net=PATH ip -j addr show` inside it gives the interface holding the container's address and its
`link_index`, the peer's ifindex in the namespace the engine (and portscope) runs in.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from portscope.core.tools import run_all, which

_NETNS_PATH = re.compile(r"/[A-Za-z0-9_.@:/-]{1,255}")
_IFINDEX_MAX = 2**31 - 1


def check_netns_path(path: object) -> str:
    """A namespace path fit to pass to nsenter: absolute, plain ASCII, no `..`; ValueError otherwise."""
    if not isinstance(path, str) or not _NETNS_PATH.fullmatch(path) or ".." in path.split("/"):
        raise ValueError(f"network namespace path {path!r}")
    return path


def check_ifindex(value: object) -> int:
    """An interface index as the kernel hands them out (1 .. 2^31-1); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _IFINDEX_MAX:
        raise ValueError(f"interface index {value!r}")
    return value


def namespace_paths(endpoint: str | None, container_ids: Iterable[str], timeout: float = 10.0) -> dict[str, str]:
    """Container id -> the path of its network namespace, for the running containers the engine names one for.

    Only a local engine (a unix socket) can name a namespace this machine can enter; anything else gives {}.
    """
    ids = sorted(set(container_ids))
    if not ids or not endpoint or not endpoint.startswith("unix://"):
        return {}
    try:
        import docker
    except ImportError:
        return {}
    out: dict[str, str] = {}
    try:
        with docker.APIClient(base_url=endpoint, timeout=timeout) as client:
            for cid in ids:
                path = namespace_path(client.inspect_container(cid))
                if path is not None:
                    out[cid] = path
    except Exception:  # the SDK wraps transport errors loosely: no namespace is the safe answer
        return out
    return out


def namespace_path(inspect: Mapping[str, Any]) -> str | None:
    """The network namespace path from `docker inspect` output: SandboxKey, else the process's own."""
    settings = inspect.get("NetworkSettings") or {}
    state = inspect.get("State") or {}
    key = settings.get("SandboxKey") if isinstance(settings, Mapping) else None
    pid = state.get("Pid") if isinstance(state, Mapping) else None
    for candidate in (
        key,
        f"/proc/{pid}/ns/net" if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
    ):
        try:
            return check_netns_path(candidate)
        except ValueError:
            continue
    return None


def peer_indexes(wanted: Mapping[str, tuple[str, str]], timeout: float = 10.0) -> dict[str, int]:
    """For each key -> (namespace path, address): the host-side ifindex of the interface holding the address.

    Keys whose namespace cannot be entered, or whose interface has no peer here, are left out.
    """
    nsenter, ip = which("nsenter"), which("ip")
    if nsenter is None or ip is None or not wanted:
        return {}
    paths = sorted({check_netns_path(path) for path, _ in wanted.values()})
    results = run_all([[nsenter, f"--net={path}", ip, "-j", "addr", "show"] for path in paths], timeout=timeout)
    listings = {path: r.stdout for path, r in zip(paths, results, strict=True) if r.ok}
    out: dict[str, int] = {}
    for key, (path, address) in wanted.items():
        index = peer_index(listings.get(path, ""), address)
        if index is not None and host_has_index(index):
            out[key] = index
    return out


def peer_index(listing: str, address: str) -> int | None:
    """From `ip -j addr show` output: the `link_index` of the interface holding `address`, when its peer is in
    another namespace (`link_netnsid`); None when there is no such interface or the output is malformed."""
    try:
        want = ipaddress.ip_address(address)
        links = json.loads(listing)
    except ValueError:
        return None
    if not isinstance(links, list):
        return None
    for link in links:
        if not isinstance(link, dict) or not _holds(link.get("addr_info"), want):
            continue
        if "link_netnsid" not in link:
            return None
        try:
            return check_ifindex(link.get("link_index"))
        except ValueError:
            return None
    return None


def host_has_index(index: int) -> bool:
    """The interface `index` exists in this namespace."""
    try:
        socket.if_indextoname(index)
    except OSError:
        return False
    return True


def _holds(addr_info: object, want: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not isinstance(addr_info, list):
        return False
    for entry in addr_info:
        local = entry.get("local") if isinstance(entry, dict) else None
        try:
            if isinstance(local, str) and ipaddress.ip_address(local) == want:
                return True
        except ValueError:
            continue
    return False
