"""The engine calls `recreate` makes, through the docker SDK; every failure becomes a RecreateFailed line."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from portscope.core.containers import DEFAULT_DOCKER_HOST, engine_failure_reason
from portscope.core.errors import EngineError
from portscope.core.recreate.errors import RecreateFailed

T = TypeVar("T")


class Engine:
    """A connection to the engine with the operations of a swap, named as `docker` names them."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as exc:  # the SDK raises requests' and its own errors alike: this is the edge
            explanation = getattr(exc, "explanation", None) or str(exc)
            raise RecreateFailed(f"{what}: {explanation}") from None

    def inspect(self, ref: str) -> dict[str, Any]:
        return self._call(f"docker inspect {ref}", lambda: self.client.inspect_container(ref))

    def exists(self, ref: str) -> bool:
        import docker.errors

        try:
            self.client.inspect_container(ref)
        except docker.errors.NotFound:
            return False
        return True

    def image_id(self, ref: str) -> str | None:
        """The ID the image name `ref` names now, or None when it names none."""
        import docker.errors

        try:
            return str(self.client.inspect_image(ref)["Id"])
        except docker.errors.NotFound:
            return None

    def stop(self, ref: str) -> None:
        self._call(f"docker stop {ref}", lambda: self.client.stop(ref))

    def rename(self, ref: str, name: str) -> None:
        self._call(f"docker rename {ref} {name}", lambda: self.client.rename(ref, name))

    def create(self, name: str, body: Mapping[str, Any]) -> str:
        made = self._call(f"docker create --name {name}", lambda: self.client.create_container_from_config(body, name))
        return str(made["Id"])

    def connect(self, network: str, ref: str, endpoint: Mapping[str, Any]) -> None:
        ipam = endpoint.get("IPAMConfig") or {}
        self._call(
            f"docker network connect {network} {ref}",
            lambda: self.client.connect_container_to_network(
                ref,
                network,
                aliases=endpoint.get("Aliases"),
                links=endpoint.get("Links"),
                ipv4_address=ipam.get("IPv4Address") or None,
                ipv6_address=ipam.get("IPv6Address") or None,
                link_local_ips=ipam.get("LinkLocalIPs") or None,
                driver_opt=endpoint.get("DriverOpts"),
            ),
        )

    def start(self, ref: str) -> None:
        self._call(f"docker start {ref}", lambda: self.client.start(ref))

    def remove(self, ref: str, *, force: bool = False) -> None:
        """Remove a container, never its volumes (anonymous ones may be carried over to the replacement)."""
        self._call(f"docker rm {ref}", lambda: self.client.remove_container(ref, v=False, force=force))

    def wait_ready(self, ref: str, *, health: bool, timeout: float, poll: float = 0.2) -> None:
        """Until `ref` runs (and is healthy when it has a health check); RecreateFailed when it stops or times out."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.inspect(ref)["State"]
            status = (state.get("Health") or {}).get("Status")
            if state.get("Running") and (not health or status == "healthy"):
                return
            if not state.get("Running") and state.get("Status") in ("exited", "dead"):
                raise RecreateFailed(f"the new container exited with code {state.get('ExitCode')}")
            if time.monotonic() > deadline:
                what = f"healthy (health: {status})" if health else "running"
                raise RecreateFailed(f"the new container was not {what} within {timeout:g} s")
            time.sleep(poll)


@contextmanager
def connect(docker_host: str | None = None, timeout: float = 60) -> Iterator[Engine]:
    """An Engine for `docker_host` (else $DOCKER_HOST, else the default socket); EngineError when unreachable."""
    import docker

    endpoint = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    try:
        client = docker.APIClient(base_url=endpoint, timeout=timeout)
        client.version(api_version=False)
    except Exception as exc:  # the SDK wraps transport errors loosely; this is the edge
        raise EngineError(
            f"cannot reach the container engine: {engine_failure_reason(endpoint, exc, timeout)}"
        ) from None
    with client:
        yield Engine(client)
