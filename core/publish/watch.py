"""Follow the engine's event stream and reconcile whenever a container starts, restarts, dies or is removed.

Docker names a removal `destroy`, Podman `remove`. Podman's compatible API filters on its own event names
(`died`, not the `die` it sends), so the stream is filtered by type only and the events are picked here.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from portscope.core.errors import EngineError, PortscopeError
from portscope.core.publish.world import require_root

EVENTS = ("start", "restart", "die", "destroy", "remove")


class _Stop(Exception):
    """Raised from the SIGTERM/SIGINT handler, only while waiting for an event, to leave the loop."""


class _Signals:
    """SIGTERM/SIGINT stop the watch: at once while it waits, after the reconcile while it changes rules."""

    def __init__(self) -> None:
        self.busy = False
        self.stop = False

    def handler(self, signum: int, frame: object) -> None:
        self.stop = True
        if not self.busy:
            raise _Stop()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def run(self, job: Callable[[], Any]) -> Any:
        """Run `job` with signals deferred; raise _Stop afterwards if one came meanwhile."""
        self.busy = True
        try:
            return job()
        finally:
            self.busy = False
            if self.stop:
                raise _Stop()


def watch(
    docker_host: str | None = None,
    on_reconcile: Callable[[Any], None] | None = None,
    reconcile: Callable[[], Any] | None = None,
    backend: str = "auto",
) -> int:
    """Reconcile once, then after every container start/restart/die/removal, until SIGTERM or SIGINT; returns 0.

    The event stream is opened before the first reconcile, so no event between the two is lost.
    Once a state has been seen, a state that vanishes is an error of that reconcile (reported, rules
    kept as they are), never an empty state that would remove every binding's rules.
    """
    require_root("watch")
    if reconcile is None:
        reconcile = _state_keeping_reconcile(docker_host, backend)

    signals = _Signals()
    stream = None
    with signals.installed():
        try:
            client = signals.run(lambda: _client(docker_host))
            stream = signals.run(lambda: client.events(decode=True, filters={"type": "container"}))
            _report(on_reconcile, signals.run(lambda: _guarded(reconcile)))
            for event in stream:
                if event.get("status") in EVENTS or event.get("Action") in EVENTS:
                    _report(on_reconcile, signals.run(lambda: _guarded(reconcile)))
            raise EngineError("the engine closed its event stream (did it restart?): start `portscope watch` again")
        except _Stop:
            pass
        finally:
            signals.busy = True  # no exception from a late signal while closing
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
    return 0


def _state_keeping_reconcile(docker_host: str | None, backend: str) -> Callable[[], Any]:
    """`reconcile` that requires the state once one existed (at the start, or saved by a reconcile)."""
    from portscope.core.publish import state
    from portscope.core.publish.maintain import converge

    seen = os.path.lexists(os.path.join(state.state_dir(), state.STATE))

    def reconcile() -> Any:
        nonlocal seen
        report = converge("reconcile", docker_host, backend=backend, require_state=seen)
        seen = True  # converge saved the state
        return report

    return reconcile


def _guarded(reconcile: Callable[[], Any]) -> Any:
    """A failed reconcile is reported and the watch goes on: the next event may fix it."""
    try:
        return reconcile()
    except PortscopeError as exc:
        return exc


def _report(callback: Callable[[Any], None] | None, result: Any) -> None:
    if callback is not None:
        callback(result)


def _client(docker_host: str | None) -> Any:
    import docker

    from portscope.core.containers import DEFAULT_DOCKER_HOST

    endpoint = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    try:
        client = docker.APIClient(base_url=endpoint, timeout=30)
        client.version(api_version=False)
    except Exception as exc:
        raise EngineError(f"cannot reach the container engine at {endpoint}: {exc}") from None
    return client
