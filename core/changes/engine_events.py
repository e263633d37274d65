"""The container engine's event stream (Docker, and Podman's Docker-compatible API): containers and networks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from portscope.core.containers import DEFAULT_DOCKER_HOST

#: Event types that can change a container's ports or address (Podman names its actions differently, so
#: the stream is filtered by type only).
TYPES = ["container", "network"]


class EngineEvents:
    """Follows the engine's events; `follow` blocks and calls `on_change()` per event until `stop`."""

    def __init__(self, docker_host: str | None = None) -> None:
        self.endpoint = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        self._stream: Any = None
        self.stopped = False

    def follow(self, on_change: Callable[[], None]) -> str | None:
        """Open the stream and follow it; why it ended (None: stopped). A failure to connect is a reason too."""
        try:
            import docker

            client = docker.APIClient(base_url=self.endpoint, timeout=None)
            self._stream = client.events(decode=True, filters={"type": TYPES})
        except Exception as exc:  # the SDK raises many types (requests, docker.errors, OSError)
            return f"cannot follow the engine's events at {self.endpoint}: {type(exc).__name__}"
        if self.stopped:
            self.stop()
            return None
        on_change()  # whatever happened while the stream was not open
        try:
            for _event in self._stream:
                on_change()
        except Exception as exc:
            if not self.stopped:
                return f"the engine's event stream broke: {type(exc).__name__}"
        return None if self.stopped else "the engine closed its event stream"

    def stop(self) -> None:
        self.stopped = True
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
