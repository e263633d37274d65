"""Shared helpers for the publish form / confirm-change TUI tests: injected changes (`Changes`), the app
builder (`app_with`) and Pilot steps (`open_form`, `open_confirm`, `type_into`, ...).

`Changes` records every call and answers dry runs with the rules core's own renderer makes for the request,
and recreates with the plan core's own planner makes from the sample's container, so nothing needs root,
touches the firewall or talks to an engine.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from textual.widgets import Input, Select, Static

from portscope.core.model import Snapshot
from portscope.core.publish.commit import Outcome
from portscope.core.publish.model import StoredBinding, binding_id
from portscope.core.publish.ops import Change
from portscope.core.publish.render import Placed, render
from portscope.core.publish.targets import container_target, find_container
from portscope.core.recreate.describe import describe
from portscope.core.recreate.plan import plan_recreate
from portscope.core.recreate.run import RecreateOutcome, RecreateRequest
from portscope.tui.publish_support import BindingChange, ChangeRequest, PublishRequest
from portscope.tui.screens.confirm_change import ConfirmChange
from portscope.tui.screens.publish_form import PublishForm
from tests.tui.conftest import live_app, loaded, notifications, wait_until

WEB = "ipv4/tcp/0.0.0.0:8080->172.30.0.4:80"  # Docker's binding of web (Ports view key)
HAND = "ipv4/tcp/0.0.0.0:2222->10.99.0.5:22"  # a hand-made DNAT (owner manual)


def rendered(snap: Snapshot, request: PublishRequest) -> Change:
    """What `ops.publish(..., dry_run=True)` reports on the sample (no portscope rules yet): core's rendering."""
    family = "ipv6" if ":" in request.host_ip else "ipv4"
    container = find_container(snap.containers, request.container)
    assert container is not None
    target = container_target(container, family, snap.host)
    port = request.host_port or 32770
    stored = StoredBinding(
        id=binding_id("publish", request.host_ip, port, request.protocol),
        kind="publish",
        host_ip=request.host_ip,
        host_port=port,
        protocol=request.protocol,
        container_port=request.container_port,
        container_id=container.id,
        container_name=container.name,
        last_ip=target.ip,
        bridge=target.bridge,
        why=request.reason,
    )
    present = {t.name: set(t.chains) for t in snap.tables if t.family == family}
    view = render([Placed(stored, target.ip, target.bridge)], family, present)
    added = [f"-t {name} {line}" for name, table in view.items() for line in table.rule_lines()]
    added += [f"-t {name} -A {j.chain} {j.spec}" for name, table in view.items() for j in table.jumps]
    return Change(binding=stored, outcome=Outcome(added=added))


def changed(change: BindingChange, removed: list[str], added: list[str]) -> Change:
    kind = "publish" if change.action == "unpublish" else "block"
    stored = StoredBinding(id="ps-0badc0de", kind=kind, host_ip="0.0.0.0", host_port=8080, protocol="tcp",
                           container_port=80, container_name="web")  # fmt: skip
    return Change(binding=stored, outcome=Outcome(added=added, removed=removed))


BLOCK_RULE = (
    "-t filter -A PORTSCOPE-FORWARD -d 172.30.0.4/32 ! -i br-6debdcee2df8 -p tcp -m tcp --dport 80 "
    '-m conntrack --ctorigdstport 8080 -m comment --comment "portscope:ps-0badc0de" -j DROP'
)


def inspected(snap: Snapshot, name: str, labels: dict[str, str] | None = None) -> dict:
    """`docker inspect` of a sample container, as far as the sample knows it (ports, networks, state)."""
    container = find_container(snap.containers, name)
    assert container is not None
    bindings: dict[str, list[dict[str, str]]] = {}
    for m in container.requested:
        bindings.setdefault(f"{m.container_port}/{m.protocol}", []).append({"HostIp": m.host_ip,
                                                                             "HostPort": m.host_port})  # fmt: skip
    return {
        "Name": f"/{container.name}",
        "Id": container.id,
        "Image": "sha256:" + "ab" * 32,
        "Config": {"Image": container.image, "Labels": labels or {}, "Cmd": ["httpd", "-f"]},
        "HostConfig": {"PortBindings": bindings, "NetworkMode": container.network_mode},
        "State": {"Running": container.state == "running"},
        "Mounts": [],
        "NetworkSettings": {"Networks": {n.name: {"Aliases": None} for n in container.networks}},
    }


def planned(snap: Snapshot, request: RecreateRequest, labels: dict[str, str] | None = None) -> RecreateOutcome:
    """What `run.recreate` reports for `request` on the sample: core's plan and its description."""
    plan = plan_recreate(inspected(snap, request.container, labels), request.change, image_name_current=True)
    new_id = None if request.dry_run else "fe" * 32
    return RecreateOutcome(plan=plan, lines=tuple(describe(plan, 30.0)), new_id=new_id)


class Changes:
    """Injected `preview_change` / `apply_change` / `read_state` / `recreate`: records calls (with the thread
    they ran on)."""

    def __init__(self, snap: Snapshot, stored: list[StoredBinding] | None = None) -> None:
        self.snap = snap
        self.stored = stored or []
        self.previews: list[ChangeRequest] = []
        self.applied: list[ChangeRequest] = []
        self.recreates: list[RecreateRequest] = []
        self.threads: set[str] = set()
        self.preview_error: BaseException | None = None
        self.apply_error: BaseException | None = None
        self.recreate_error: BaseException | None = None  # raised by a real recreate
        self.plan_error: BaseException | None = None  # raised by a recreate's dry run
        self.labels: dict[str, dict[str, str]] = {}  # container name -> its labels (Compose's...)
        self.gate: threading.Event | None = None  # when set, apply and a real recreate wait on it
        self.plan_gate: threading.Event | None = None  # when set, a recreate's dry run waits on it

    def preview(self, request: ChangeRequest) -> Change:
        self.threads.add(threading.current_thread().name)
        self.previews.append(request)
        if self.preview_error is not None:
            raise self.preview_error
        if isinstance(request, PublishRequest):
            return rendered(self.snap, request)
        if request.action == "unblock":
            return changed(request, [BLOCK_RULE], [])
        return changed(request, [], [BLOCK_RULE])

    def apply(self, request: ChangeRequest) -> Change:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(timeout=30)
        self.applied.append(request)
        if self.apply_error is not None:
            raise self.apply_error
        return self._result(request)

    def _result(self, request: ChangeRequest) -> Change:
        if isinstance(request, PublishRequest):
            return rendered(self.snap, request)
        return changed(request, [], [BLOCK_RULE])

    def read_state(self) -> list[StoredBinding]:
        self.threads.add(threading.current_thread().name)
        return list(self.stored)

    def recreate(self, request: RecreateRequest) -> RecreateOutcome:
        self.threads.add(threading.current_thread().name)
        gate = self.plan_gate if request.dry_run else self.gate
        if gate is not None:
            gate.wait(timeout=30)
        self.recreates.append(request)
        error = self.plan_error if request.dry_run else self.recreate_error
        if error is not None:
            raise error
        return planned(self.snap, request, self.labels.get(request.container))


class CountingLoader:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.calls = 0

    def __call__(self) -> Snapshot:
        self.calls += 1
        return self.snap


def app_with(changes: Changes, snap: Snapshot | None = None, loader=None):
    snap = snap or changes.snap
    return live_app(loader or (lambda: snap), apply_change=changes.apply, preview_change=changes.preview,
                    read_state=changes.read_state, recreate=changes.recreate)  # fmt: skip


def with_ipv6(snap: Snapshot) -> Snapshot:
    """The sample on a host that also has an IPv6 address (every container has IPv4 only)."""
    host = replace(snap.host, addresses=(*snap.host.addresses, "fd00::1"),
                               networks=(*snap.host.networks, ("eth0", "fd00::1/64")))  # fmt: skip
    return replace(snap, host=host)


def form(app) -> PublishForm:
    assert isinstance(app.screen, PublishForm)
    return app.screen


def message(app, field: str) -> str:
    widget = app.screen.query_one(f"#{field}-msg", Static)
    return str(widget.render()) if widget.display else ""


def preview(app) -> str:
    return str(app.screen.query_one("#preview" if isinstance(app.screen, PublishForm) else "#change-preview",
                                    Static).render())  # fmt: skip


def notices(app) -> list[tuple[str, str]]:
    return notifications(app)


async def type_into(pilot, field: str, text: str) -> None:
    widget = pilot.app.screen.query_one(f"#{field}", Input)
    widget.focus()
    widget.value = ""
    await pilot.pause()
    if text:
        await pilot.press(*text)
    await pilot.pause()


async def choose(pilot, field: str, value: str) -> None:
    pilot.app.screen.query_one(f"#{field}", Select).value = value
    await pilot.pause()


async def previewed(pilot, request: PublishRequest) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: form(app).previewed == request and form(app)._preview_worker is None)
    await pilot.pause()


async def open_form(pilot, *keys: str) -> PublishForm:
    await loaded(pilot)
    await pilot.press(*keys, "a")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PublishForm))
    await pilot.pause()
    return form(pilot.app)


def web_id(snap: Snapshot) -> str:
    return next(c.id for c in snap.containers if c.name == "web")


async def open_confirm(pilot, key: str) -> ConfirmChange:
    app = pilot.app
    await loaded(pilot)
    ports = app.view("ports").table
    ports.move_cursor(row=ports.shown_keys.index(key))
    await pilot.press("x")
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmChange))
    screen = app.screen
    await wait_until(pilot, lambda: screen.ready or "refused" in preview(app))
    await pilot.pause()
    return screen
