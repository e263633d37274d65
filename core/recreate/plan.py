"""What `portscope recreate` will create: the old container's whole configuration with a new port set.

The plan is a pure function of `docker inspect` (the container, and whether its image name still names
the same image). Everything is carried over except the port bindings being changed; the few things that
cannot be carried as they were are listed in `CHANGED_BY_RECREATE` (the test of record checks that
`docker inspect` before and after differs only there).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portscope.core.publish.spec import PortSpec
from portscope.core.recreate.errors import RecreateRefused

#: `docker inspect` paths that differ between a container and its recreation, and why. Anything else
#: differing is a bug (tests/integration/test_recreate.py compares every field).
CHANGED_BY_RECREATE: dict[str, str] = {
    "Id": "a new container",
    "Created": "a new container",
    "State": "a new container (started when the old one ran)",
    "Image": "unchanged unless the old image name now names another image: the ID is kept",
    "ResolvConfPath": "holds the container ID",
    "HostnamePath": "holds the container ID",
    "HostsPath": "holds the container ID",
    "LogPath": "holds the container ID",
    "RestartCount": "a new container",
    "ExecIDs": "a new container",
    "GraphDriver": "a new writable layer (the old one's files outside volumes are not carried over)",
    "Config.ExposedPorts": "gains the container ports of added bindings",
    "Config.Hostname": "only when it was the engine's default (the old container's short ID)",
    "HostConfig.PortBindings": "the change asked for",
    "HostConfig.Binds": "gains NAME:PATH for each anonymous volume, so its data is carried over",
    "Mounts": "the same volumes at the same paths, listed anew (a carried anonymous volume shows a bind's mode)",
    "NetworkSettings": "new endpoints: IDs, sandbox, the engine's short-ID alias, published ports;"
    " addresses and MACs the engine chose may change (static ones are kept)",
}

_NETWORK_MODES_REFUSED = {"host": "it uses the host's network, so it has no published ports to change",
                          "none": "it has no network (--network none)"}  # fmt: skip
_COMPOSE = "com.docker.compose.project"


@dataclass(frozen=True, slots=True)
class PortChange:
    """Ports to add and to remove, each in docker's `-p` syntax (parsed)."""

    add: tuple[PortSpec, ...] = ()
    remove: tuple[PortSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class RecreatePlan:
    """Everything the swap needs, decided before anything changes."""

    name: str
    old_id: str
    was_running: bool
    image: str
    create_body: dict[str, Any]
    connect: tuple[tuple[str, dict[str, Any]], ...]
    port_bindings_before: dict[str, list[dict[str, str]]]
    port_bindings_after: dict[str, list[dict[str, str]]]
    health_check: bool
    carried_volumes: tuple[str, ...] = field(default=())

    @property
    def aside_name(self) -> str:
        """The old container's name while the new one takes its name."""
        return f"{self.name}-portscope-old-{self.old_id[:12]}"


def plan_recreate(inspect: Mapping[str, Any], change: PortChange, *, image_name_current: bool) -> RecreatePlan:
    """The plan for recreating the container `inspect` describes with `change` applied.

    `image_name_current`: the image name in its config still names the image it was created from
    (else the image ID is used, so a moved tag does not change what runs).
    """
    name = str(inspect["Name"]).lstrip("/")
    config = copy.deepcopy(dict(inspect["Config"]))
    host_config = copy.deepcopy(dict(inspect["HostConfig"]))
    _refuse_unsupported(name, config, host_config, change)
    before = {port: list(bindings or []) for port, bindings in (host_config.get("PortBindings") or {}).items()}
    after = _changed_bindings(name, before, change)
    exposed = dict(config.get("ExposedPorts") or {})
    for spec in change.add:
        exposed.setdefault(_port_key(spec), {})
    config["ExposedPorts"] = exposed or None
    if not image_name_current:
        config["Image"] = inspect["Image"]
    if config.get("Hostname") == str(inspect["Id"])[:12]:
        del config["Hostname"]  # the engine's default; the new container gets its own
    host_config["PortBindings"] = after
    carried = _carry_anonymous_volumes(inspect, host_config)
    host_config["Links"] = _create_links(host_config.get("Links"))
    primary, others = _endpoints(inspect, host_config, config)
    body = {**config, "HostConfig": host_config, "NetworkingConfig": {"EndpointsConfig": primary}}
    health = config.get("Healthcheck") or {}
    return RecreatePlan(
        name=name,
        old_id=str(inspect["Id"]),
        was_running=bool(inspect["State"].get("Running")),
        image=str(config["Image"]),
        create_body=body,
        connect=tuple(others),
        port_bindings_before=before,
        port_bindings_after=after,
        health_check=bool(health.get("Test")) and health.get("Test") != ["NONE"],
        carried_volumes=tuple(carried),
    )


def _refuse_unsupported(
    name: str, config: Mapping[str, Any], host_config: Mapping[str, Any], change: PortChange
) -> None:
    labels = config.get("Labels") or {}
    if _COMPOSE in labels:
        raise RecreateRefused(compose_advice(name, labels, change))
    mode = str(host_config.get("NetworkMode") or "")
    if mode in _NETWORK_MODES_REFUSED:
        raise RecreateRefused(f"{name}: not recreated: {_NETWORK_MODES_REFUSED[mode]}")
    if mode.startswith("container:"):
        raise RecreateRefused(f"{name}: not recreated: it shares another container's network ({mode}); change that one")
    if host_config.get("AutoRemove"):
        raise RecreateRefused(f"{name}: not recreated: it was started with --rm, so stopping it would delete it")


def compose_advice(name: str, labels: Mapping[str, str], change: PortChange | None = None) -> str:
    """What to do instead for a Compose-managed container: its file and service, the `ports:` change, the command."""
    service = labels.get("com.docker.compose.service", "?")
    files = labels.get("com.docker.compose.project.config_files") or labels.get(
        "com.docker.compose.project.working_dir", "its compose file"
    )
    edits = [f'add "{spec}"' for spec in (change.add if change else ())]
    edits += [f'remove "{spec}"' for spec in (change.remove if change else ())]
    what = f"under `ports:` of service {service}, {' and '.join(edits)}" if edits else f"change `ports:` of {service}"
    return (
        f"{name} is managed by Compose (project {labels.get(_COMPOSE)}, service {service}, {files}): "
        f"{what} there, then run `docker compose up -d {service}`"
    )


def _port_key(spec: PortSpec) -> str:
    return f"{spec.container_port}/{spec.protocol}"


def _binding(spec: PortSpec) -> dict[str, str]:
    return {"HostIp": spec.host_ip or "", "HostPort": str(spec.host_port) if spec.host_port else ""}


def _changed_bindings(
    name: str, before: Mapping[str, list[dict[str, str]]], change: PortChange
) -> dict[str, list[dict[str, str]]]:
    after = {port: list(bindings) for port, bindings in before.items()}
    for spec in change.remove:
        key = _port_key(spec)
        kept = [b for b in after.get(key, []) if not _matches(b, spec)]
        if len(kept) == len(after.get(key, [])):
            raise RecreateRefused(f"{name} does not publish {spec}: see `docker port {name}`")
        if kept:
            after[key] = kept
        else:
            del after[key]
    for spec in change.add:
        new = _binding(spec)
        clash = _holder(after, spec)
        if clash is not None:
            raise RecreateRefused(
                f"{name} already publishes host port {spec.host_port}/{spec.protocol} (to {clash}):"
                f" choose another host port, or --remove that binding too"
            )
        after.setdefault(_port_key(spec), []).append(new)
    return after


def _holder(bindings: Mapping[str, list[dict[str, str]]], spec: PortSpec) -> str | None:
    """The container port already bound to `spec`'s host port (same protocol, overlapping address), if any."""
    if spec.host_port is None:
        return None
    for port, entries in bindings.items():
        if not port.endswith(f"/{spec.protocol}"):
            continue
        for entry in entries:
            ip = entry.get("HostIp") or ""
            same_address = not ip or not spec.host_ip or ip == spec.host_ip
            if entry.get("HostPort") == str(spec.host_port) and same_address:
                return port
    return None


def _matches(binding: Mapping[str, str], spec: PortSpec) -> bool:
    """Does `--remove SPEC` name this binding? A blank host part of SPEC matches any."""
    if spec.host_port is not None and binding.get("HostPort") != str(spec.host_port):
        return False
    return spec.host_ip is None or (binding.get("HostIp") or "") == spec.host_ip


def _carry_anonymous_volumes(inspect: Mapping[str, Any], host_config: dict[str, Any]) -> list[str]:
    """Mount each anonymous volume by name at its path, so the new container gets its data, not an empty one."""
    named = {str(b).split(":")[1] for b in host_config.get("Binds") or [] if ":" in str(b)}
    named |= {str(m.get("Target")) for m in host_config.get("Mounts") or []}
    binds = list(host_config.get("Binds") or [])
    carried = []
    for mount in inspect.get("Mounts") or []:
        if mount.get("Type") != "volume" or mount.get("Destination") in named:
            continue
        suffix = "" if mount.get("RW", True) else ":ro"
        binds.append(f"{mount['Name']}:{mount['Destination']}{suffix}")
        carried.append(str(mount["Name"]))
    host_config["Binds"] = binds or None
    return carried


def _create_links(links: Sequence[str] | None) -> list[str] | None:
    """Inspect shows legacy links as `/db:/web/db`; create takes `db:db`."""
    if not links:
        return None
    return [f"{src.lstrip('/')}:{dst.rsplit('/', 1)[-1]}" for src, _, dst in (link.partition(":") for link in links)]


def _endpoint(settings: Mapping[str, Any], auto_aliases: set[str]) -> dict[str, Any]:
    aliases = [a for a in settings.get("Aliases") or [] if a not in auto_aliases]
    endpoint: dict[str, Any] = {"Aliases": aliases or None}
    for key in ("IPAMConfig", "Links", "DriverOpts"):
        if settings.get(key):
            endpoint[key] = settings[key]
    return endpoint


def _endpoints(
    inspect: Mapping[str, Any], host_config: Mapping[str, Any], config: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    """The endpoint of the primary network (given at create) and the others (connected before start)."""
    networks: Mapping[str, Any] = inspect.get("NetworkSettings", {}).get("Networks") or {}
    mode = str(host_config.get("NetworkMode") or "default")
    primary = "bridge" if mode == "default" else mode
    auto = {str(inspect["Id"])[:12], str(config.get("Hostname") or "")}
    endpoints = {net: _endpoint(settings or {}, auto) for net, settings in networks.items()}
    first = {primary: endpoints.pop(primary)} if primary in endpoints else {}
    return first, sorted(endpoints.items())
