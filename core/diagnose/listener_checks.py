"""Checks that join DNAT bindings with sockets: shadowed listeners and orphaned docker-proxies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from portscope.core.findings import Finding
from portscope.core.model import Binding, Container, Socket

#: Processes that hold a published port on the binding's behalf (not a conflict).
ENGINE_PROCESSES = frozenset(
    {"docker-proxy", "dockerd", "rootlessport", "rootlesskit", "conmon", "podman", "netavark", "slirp4netns"}
)
_WILDCARDS = frozenset({"0.0.0.0", "::", "*", ""})


def _covers(binding: Binding, sock: Socket) -> bool:
    """True when packets the binding's DNAT catches would otherwise reach this socket."""
    if sock.address in _WILDCARDS or binding.host_ip in _WILDCARDS:
        return True
    return sock.address == binding.host_ip


def shadowed_listeners(bindings: Iterable[Binding], sockets: Iterable[Socket]) -> list[Finding]:
    """A host process listening on a port a DNAT captures: outside clients reach the container,
    local clients (and the process's own users) reach the process. Sockets are indexed by
    (protocol, port), so each binding looks only at its own port's sockets."""
    by_port: dict[tuple[str, int], list[Socket]] = defaultdict(list)
    for s in sockets:
        if s.proxy is None and (s.process or "") not in ENGINE_PROCESSES:
            by_port[(s.protocol, s.port)].append(s)
    out = []
    for b in bindings:
        if "dnat" not in b.carriers or b.host_port is None or b.host_port_last is not None:
            continue
        rivals = [s for s in by_port.get((b.protocol, b.host_port), ()) if _covers(b, s)]
        if rivals:
            out.append(_shadow_finding(b, rivals))
    return out


def _shadow_finding(b: Binding, rivals: list[Socket]) -> Finding:
    who = ", ".join(f"{s.process or '?'} (pid {s.pid if s.pid is not None else '?'})" for s in rivals)
    target = b.container_name or b.target_ip
    other_family = [s for s in rivals if s.family != b.family]
    if other_family and len(other_family) == len(rivals):
        fam, other = ("IPv4", "IPv6") if b.family == "ipv4" else ("IPv6", "IPv4")
        split = (
            f"The DNAT catches {fam} only, and {who} listens on {other}: clients that reach this host over {other} "
            f"(including `localhost` where it resolves to {'::1' if other == 'IPv6' else '127.0.0.1'}) get the "
            f"process, {fam} clients get the container."
        )
    elif "output" in b.hooks:
        split = (
            "Clients are sent to the container, except those whose packets the DNAT does not catch (another "
            "address, or loopback where the rule excludes it), which reach the process."
        )
    else:
        split = (
            "The DNAT sits in PREROUTING only, so clients from other machines are sent to the container while "
            "clients on this host reach the process."
        )
    return Finding(
        kind="shadowed-listener",
        severity="error",
        title=f"{who} listens on {b.protocol}/{b.host_port}, which a DNAT sends to {target}",
        explanation=(
            f"Port {b.host_port}/{b.protocol} is published to {target} by a DNAT rule, and {who} also listens on "
            f"it. {split} Each side sees a different service on the same port — with the userland proxy off "
            "nothing stops a host process from taking a published port."
        ),
        fix=f"ss -ltnup 'sport = :{b.host_port}'   # then stop {rivals[0].process or 'the process'} or move it to "
        "another port",
        rules=list(b.rules),
        processes=rivals,
        container=b.container_name,
        bindings=[b.id],
        port=b.host_port,
        protocol=b.protocol,
    )


def orphaned_proxies(bindings: Iterable[Binding], containers: Iterable[Container], engine_up: bool) -> list[Finding]:
    """A docker-proxy process whose container no longer runs: it holds the port for nobody."""
    if not engine_up:
        return []
    running = _running_ips(containers)
    out = []
    for b in bindings:
        for s in b.sockets:
            if s.proxy is not None and s.proxy.container_ip not in running:
                out.append(
                    Finding(
                        kind="stale-rule",
                        severity="warning",
                        title=f"docker-proxy pid {s.pid} holds {b.protocol}/{b.host_port} for a container that is gone",
                        explanation=(
                            f"docker-proxy (pid {s.pid}) forwards port {b.host_port}/{b.protocol} to "
                            f"{s.proxy.container_ip}:{s.proxy.container_port}, but no running container has that "
                            "address. The port is held for nothing: a new container cannot publish it."
                        ),
                        fix=f"kill {s.pid}   # or restart the Docker daemon, which cleans its proxies",
                        rules=list(b.rules),
                        processes=[s],
                        bindings=[b.id],
                        port=b.host_port,
                        protocol=b.protocol,
                    )
                )
    return out


def _running_ips(containers: Iterable[Container]) -> set[str]:
    return {ip for c in containers if c.state == "running" for n in c.networks for ip in (n.ipv4, n.ipv6) if ip}
