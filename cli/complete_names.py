"""`portscope __complete KIND`: the words shell completion offers for an argument (a hidden command).

Each kind is cheap to find, and the command never fails loudly: when the engine or the state file
cannot be read, it prints nothing and exits 0, so the shell simply offers nothing.

- `containers`: the names of running containers (one `GET /containers/json`), for `publish`;
- `ports`: the host ports the engine publishes, as HOST_PORT/PROTO, for `block`;
- `bindings`: portscope's own bindings from the state file, by id and by HOST_PORT/PROTO, for `unpublish`;
- `blocks`: portscope's blocks from the state file, likewise, for `unblock`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

#: Seconds to wait for the engine: completion runs while someone waits at a prompt.
ENGINE_TIMEOUT = 2.0


def add_complete_command(sub: argparse._SubParsersAction) -> None:
    """Register `__complete`; without a help text it is left out of `portscope -h` and of the completion scripts."""
    p = sub.add_parser("__complete")
    p.add_argument("kind", choices=sorted(WORDS))
    p.set_defaults(func=cmd_complete)


def cmd_complete(args: argparse.Namespace) -> int:
    try:
        words = WORDS[args.kind]()
    except Exception:  # an engine or a state that cannot be read: nothing to offer, and no noise at a prompt
        words = []
    for word in words:
        print(word)
    return 0


def _engine_summaries() -> list[dict[str, Any]]:
    """The running containers as the engine lists them; empty when no engine answers."""
    from portscope.core.containers import DEFAULT_DOCKER_HOST

    endpoint = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if endpoint.startswith("/"):
        endpoint = "unix://" + endpoint
    if endpoint.startswith("unix://") and not os.path.exists("/" + endpoint.removeprefix("unix://").lstrip("/")):
        return []  # no engine here: not even the SDK is imported
    import docker

    # An explicit API version: the SDK's "auto" would ask /version first.
    with docker.APIClient(base_url=endpoint, version="1.24", timeout=ENGINE_TIMEOUT) as client:
        return client.containers()


def container_names() -> list[str]:
    """Running containers' names."""
    names = (name.lstrip("/") for c in _engine_summaries() for name in c.get("Names") or ())
    return sorted({name for name in names if name and "/" not in name})  # "/a/b": a legacy link alias


def published_ports() -> list[str]:
    """HOST_PORT/PROTO of every port the engine publishes for a running container."""
    ports = {
        f"{p['PublicPort']}/{p.get('Type', 'tcp')}"
        for c in _engine_summaries()
        for p in c.get("Ports") or ()
        if p.get("PublicPort")
    }
    return sorted(ports, key=_port_order)


def _stored(kind: str) -> list[str]:
    """Ids and HOST_PORT/PROTO of the stored bindings of `kind` ("publish" or "block")."""
    from portscope.core.publish.state import load, state_dir

    found = [b for b in load(state_dir()).bindings if b.kind == kind]
    return [*sorted(b.id for b in found), *sorted({f"{b.host_port}/{b.protocol}" for b in found}, key=_port_order)]


def _port_order(text: str) -> tuple[int, str]:
    port, _, proto = text.partition("/")
    return int(port), proto


WORDS: dict[str, Callable[[], Iterable[str]]] = {
    "containers": container_names,
    "ports": published_ports,
    "bindings": lambda: _stored("publish"),
    "blocks": lambda: _stored("block"),
}
