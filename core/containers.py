"""Containers and their port bindings from the Docker Engine API (or Podman's compatible API).

No engine is a normal case: when the socket is absent the `docker` SDK is not even
imported. Every failure becomes a one-line reason in `EngineInfo`, never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from portscope.core.model import Container, ContainerNetwork, EngineInfo, PortMapping

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_REMOTE_SCHEMES = ("tcp://", "ssh://", "http://", "https://")


def read_containers(docker_host: str | None = None, timeout: float = 5.0) -> tuple[EngineInfo, list[Container]]:
    """The engine that answered and every container (running or not), sorted by name.

    The endpoint is `docker_host`, else $DOCKER_HOST, else the default socket.
    """
    endpoint = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if endpoint.startswith("/"):
        endpoint = "unix://" + endpoint
    if endpoint.startswith("unix://"):
        path = endpoint[len("unix://") :]
        path = "/" + path.lstrip("/")
        try:
            os.stat(path)
        except PermissionError:
            return EngineInfo(reachable=False, endpoint=endpoint, reason=permission_reason(path)), []
        except OSError:
            return EngineInfo(reachable=False, endpoint=endpoint, reason=missing_socket_reason(endpoint, path)), []
        if not os.access(path, os.R_OK | os.W_OK):
            return EngineInfo(reachable=False, endpoint=endpoint, reason=permission_reason(path)), []
    elif not endpoint.startswith(_REMOTE_SCHEMES):
        return EngineInfo(reachable=False, endpoint=endpoint, reason=f"unsupported DOCKER_HOST {endpoint!r}"), []
    return _read_from_engine(endpoint, timeout)


def _read_from_engine(endpoint: str, timeout: float) -> tuple[EngineInfo, list[Container]]:
    """Talk to an endpoint that exists; the SDK is imported only here."""
    try:
        import docker  # lazy: keeps CLI start-up fast
        import docker.errors
    except ImportError as err:
        return EngineInfo(reachable=False, endpoint=endpoint, reason=f"the docker Python SDK is missing: {err}"), []
    try:
        kwargs: dict[str, Any] = {}
        if endpoint.startswith("tcp://") and os.environ.get("DOCKER_TLS_VERIFY"):
            kwargs["tls"] = docker.utils.kwargs_from_env().get("tls", False)
        if endpoint.startswith("ssh://"):
            kwargs["use_ssh_client"] = True  # the system ssh, as the docker CLI does
        client = docker.APIClient(base_url=endpoint, timeout=timeout, **kwargs)
    except Exception as err:  # the SDK wraps transport errors loosely; this is the edge
        return EngineInfo(reachable=False, endpoint=endpoint, reason=engine_failure_reason(endpoint, err, timeout)), []
    with client:
        try:
            name, version = engine_name_version(client.version(api_version=False))
        except Exception as err:
            return EngineInfo(
                reachable=False, endpoint=endpoint, reason=engine_failure_reason(endpoint, err, timeout)
            ), []
        inspects: list[Mapping[str, Any]] = []
        try:
            for summary in client.containers(all=True):
                try:
                    inspects.append(client.inspect_container(summary["Id"]))
                except docker.errors.NotFound:
                    continue  # removed between listing and inspecting
        except Exception as err:
            reason = "the engine answered but listing containers failed: " + engine_failure_reason(
                endpoint, err, timeout
            )
            return EngineInfo(reachable=False, endpoint=endpoint, version=version, name=name, reason=reason), []
    return EngineInfo(reachable=True, endpoint=endpoint, version=version, name=name), containers_from_inspects(inspects)


def containers_from_inspects(inspects: Iterable[Mapping[str, Any]]) -> list[Container]:
    """Containers from `GET /containers/{id}/json` answers (this engine's or another host's), sorted by name."""
    return sorted((container_from_inspect(data) for data in inspects), key=lambda c: (c.name, c.id))


def missing_socket_reason(endpoint: str, path: str) -> str:
    """Why an engine whose socket does not exist was not read, with what to do."""
    hint = "set DOCKER_HOST to use another engine" if endpoint == DEFAULT_DOCKER_HOST else "check DOCKER_HOST"
    return f"no Docker socket at {path} ({hint})"


def engine_name_version(data: Mapping[str, Any]) -> tuple[str, str | None]:
    """("Docker Engine" | "Podman Engine", version) from a `GET /version` answer."""
    for component in data.get("Components") or ():
        if isinstance(component, Mapping) and "podman" in str(component.get("Name", "")).lower():
            return "Podman Engine", component.get("Version") or data.get("Version")
    return "Docker Engine", data.get("Version")


def container_from_inspect(data: Mapping[str, Any]) -> Container:
    """A Container from `GET /containers/{id}/json` (docker inspect) output.

    Ports are in force only while it runs: Podman keeps a stopped or never-started container's
    NetworkSettings.Ports (Docker empties them)."""
    config = data.get("Config") or {}
    host_config = data.get("HostConfig") or {}
    settings = data.get("NetworkSettings") or {}
    state = data.get("State") or {}
    publish_all = bool(host_config.get("PublishAllPorts"))

    bindings: dict[str, Any] = dict(host_config.get("PortBindings") or {})
    if publish_all:
        for port in config.get("ExposedPorts") or {}:
            if not bindings.get(port):
                bindings[port] = [{"HostIp": "", "HostPort": ""}]

    networks = tuple(
        ContainerNetwork(
            name=name, ipv4=(net or {}).get("IPAddress") or None, ipv6=(net or {}).get("GlobalIPv6Address") or None
        )
        for name, net in sorted((settings.get("Networks") or {}).items())
    )
    return Container(
        id=data.get("Id", ""),
        name=str(data.get("Name", "")).removeprefix("/"),
        image=config.get("Image", ""),
        state=state.get("Status", ""),
        network_mode=host_config.get("NetworkMode", ""),
        networks=networks,
        requested=_mappings(bindings.items()),
        in_force=_mappings((settings.get("Ports") or {}).items()) if state.get("Running", True) else (),
        publish_all=publish_all,
    )


def parse_port_key(key: str) -> tuple[int, str] | None:
    """ "80/tcp" -> (80, "tcp"); a bare "80" is TCP; None when malformed."""
    port_text, _, protocol = key.partition("/")
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 0 < port <= 65535:
        return None
    return port, (protocol or "tcp").lower()


def _mappings(items: Iterable[tuple[str, Any]]) -> tuple[PortMapping, ...]:
    """PortMappings from {"80/tcp": [{"HostIp": ..., "HostPort": ...}, ...] | None}; null lists are skipped."""
    found: set[PortMapping] = set()
    for key, binds in items:
        parsed = parse_port_key(key)
        if parsed is None or not binds:
            continue
        for bind in binds:
            bind = bind or {}
            found.add(
                PortMapping(
                    container_port=parsed[0],
                    protocol=parsed[1],
                    host_ip=bind.get("HostIp") or "",
                    host_port=str(bind.get("HostPort") or ""),
                )
            )
    return tuple(sorted(found, key=_mapping_key))


def _mapping_key(m: PortMapping) -> tuple[int, str, str, int, str]:
    port = int(m.host_port) if m.host_port.isdigit() else -1
    return (m.container_port, m.protocol, m.host_ip, port, m.host_port)


def permission_reason(path: str) -> str:
    return f"permission denied on {path}: run as root or join the docker group"


def engine_failure_reason(endpoint: str, err: BaseException, timeout: float) -> str:
    """One line saying why the engine at `endpoint` did not answer, from the exception chain."""
    chain: list[BaseException] = []
    seen: BaseException | None = err
    while seen is not None and seen not in chain and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain).lower()
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, PermissionError) for e in chain) or "permission denied" in text:
        path = endpoint.removeprefix("unix://")
        return permission_reason(path)
    if (
        any(isinstance(e, TimeoutError) for e in chain)
        or names & {"Timeout", "ReadTimeout", "ConnectTimeout"}
        or ("timed out" in text)
    ):
        return f"the engine at {endpoint} did not answer within {timeout:g} s"
    if any(isinstance(e, (ConnectionRefusedError, FileNotFoundError)) for e in chain) or "refused" in text:
        return f"nothing is accepting connections at {endpoint}: is the engine running?"
    first_line = (str(err).splitlines() or [type(err).__name__])[0]
    return f"the engine at {endpoint} could not be queried: {first_line}"
