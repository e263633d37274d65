"""`a`: publish a port of a running container — the fields checked as you type, the exact rules previewed.

Two ways: portscope's own rules (instant, no restart), or a recreate of the container with the port
(`portscope recreate --add`: permanent, the container restarts). The checks are core's
(`tui.publish_support.check_form`); the preview is core's dry run of the very request the confirm makes
(the rules, or the recreate's plan), in a worker, debounced; confirm runs in a worker with the button
disabled, so a double press cannot apply twice. A recreate is confirmed only once its plan is shown.
Escape cancels and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label, RadioButton, RadioSet, Select, Static
from textual.worker import Worker, WorkerState

from portscope.core.model import Snapshot
from portscope.tui.literal import literal
from portscope.tui.publish_support import (
    ALL_ADDRESSES,
    ALL_WARNING,
    FIELDS,
    Applier,
    Checked,
    FormValues,
    PublishRequest,
    address_options,
    check_form,
    container_options,
    default_address,
    done_text,
    error_line,
    missing_text,
    preview_text,
    protocol_options,
    refused_text,
)
from portscope.tui.recreate_support import PUBLISH_WAYS, Recreator, Way, adding, for_real, plan_text, recreated_text

#: Seconds of quiet after a change before the dry run starts.
DEBOUNCE = 0.35


@dataclass(frozen=True, slots=True)
class WayText:
    """What the form says for one way: the confirm button (idle, running), the preview's title, the verb."""

    button: str
    running: str
    preview: str
    verb: str


WAYS: dict[Way, WayText] = {
    "rule": WayText("Publish", "Publishing…", "Rules (dry run)", "publish"),
    "recreate": WayText("Recreate", "Recreating…", "Plan (dry run)", "recreate"),
}


class PublishForm(ModalScreen[PublishRequest | None]):
    """Dismissed with the request once it is applied, or None when cancelled."""

    CSS_PATH = "publish_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="publish-cancel", tooltip="Close the form; nothing is changed"),
        Binding("enter", "confirm", "Publish", id="publish-confirm",
                tooltip="Publish the way chosen (a recreate once its plan shows); enter in a field does the same"),
    ]  # fmt: skip

    def __init__(
        self,
        snap: Snapshot,
        *,
        preview: Applier,
        apply: Applier,
        recreate: Recreator | None = None,
        container_id: str | None = None,
        note: str | None = None,
        host: str | None = None,
    ) -> None:
        """`snap` gives the containers and the host's addresses; `preview`, `apply` and `recreate` run in a
        worker (without `recreate` the form offers portscope's rules only). `container_id` preselects a
        running container; `note` says why the one asked for is not offered; `host` names a fleet's host."""
        super().__init__()
        self.snap = snap
        self.host = host
        self.preview = preview
        self.apply = apply
        self.recreate = recreate
        self.container_id = container_id
        self.note = note
        self.way: Way = "rule"
        self.checked = Checked(None, {})
        self.touched: set[str] = set()
        self.attempted = False
        self.applying = False
        self.applying_request: PublishRequest | None = None
        self.applying_way: Way = "rule"
        self.previewed: PublishRequest | None = None  # the request the preview shows (None: none yet)
        self.previewed_way: Way = "rule"  # the way `previewed` was dry-run
        self.refused: str | None = None  # core's refusal of `previewed`
        self.shown = False  # the dry run of `previewed` succeeded and is on screen
        self._initial: dict[str, object] = {}
        self._timer: Timer | None = None
        self._preview_worker: Worker | None = None

    def compose(self) -> ComposeResult:
        ids = {value for _, value in container_options(self.snap)}
        chosen = self.container_id if self.container_id in ids else Select.NULL
        with Vertical(id="publish-box") as box:
            box.border_title = literal(f"Publish a port on {self.host}") if self.host else "Publish a port"
            box.border_subtitle = self.subtitle
            with Horizontal(classes="field"):
                yield Label("Container", classes="field-label")
                options = [(literal(label), value) for label, value in container_options(self.snap)]
                yield Select(options, prompt="choose a running container", value=chosen, id="container",
                             compact=True)  # fmt: skip
            yield Static(literal(self.note or ""), id="container-msg", classes="field-msg")
            if self.recreate is not None:
                with Horizontal(classes="field", id="way-field"):
                    yield Label("How", classes="field-label")
                    with RadioSet(id="way", compact=True):
                        for way, label, tip in PUBLISH_WAYS:
                            yield RadioButton(label, value=way == self.way, id=f"way-{way}", tooltip=tip,
                                              compact=True)  # fmt: skip
            with Horizontal(classes="field"):
                yield Label("Host address", classes="field-label")
                yield Select([(literal(label), value) for label, value in address_options(self.snap.host)],
                             allow_blank=False,
                             value=default_address(self.snap.host), id="host-ip", compact=True)  # fmt: skip
            yield Static("", id="host-ip-msg", classes="field-msg")
            yield Static(f"⚠ {ALL_WARNING}", id="all-warning")
            with Horizontal(classes="field"):
                yield Label("Host port", classes="field-label")
                yield Input(placeholder="blank: an ephemeral port, the lowest free one (as Docker picks it)",
                            id="host-port", compact=True)  # fmt: skip
            yield Static("", id="host-port-msg", classes="field-msg")
            with Horizontal(classes="field"):
                yield Label("Container port", classes="field-label")
                yield Input(placeholder="the port the container listens on, 1-65535", id="container-port",
                            compact=True)  # fmt: skip
            yield Static("", id="container-port-msg", classes="field-msg")
            with Horizontal(classes="field"):
                yield Label("Protocol", classes="field-label")
                yield Select(protocol_options(), allow_blank=False, value="tcp", id="protocol", compact=True)
            yield Static("", id="protocol-msg", classes="field-msg")
            with Horizontal(classes="field", id="reason-field"):
                yield Label("Reason", classes="field-label")
                yield Input(placeholder="optional: why (kept in portscope's state and audit log)", id="reason",
                            compact=True)  # fmt: skip
            yield Static("", id="reason-msg", classes="field-msg")
            yield Label(WAYS[self.way].preview, id="preview-title")
            with VerticalScroll(id="preview-scroll"):
                yield Static(id="preview")
            with Horizontal(id="publish-buttons"):
                yield Button(WAYS[self.way].button, variant="primary", id="confirm", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    @property
    def subtitle(self) -> str:
        return f"enter {WAYS[self.way].verb} · esc cancel · tab next field"

    def on_mount(self) -> None:
        self._initial = self.values().by_field()
        self.check()
        self.start_preview()
        first = "#container-port" if self.values().container_id else "#container"
        self.query_one(first).focus()

    # ------------------------------------------------------------------ fields

    def values(self) -> FormValues:
        def text(field: str) -> str:
            return self.query_one(f"#{field}", Input).value

        def choice(field: str) -> str | None:
            value = self.query_one(f"#{field}", Select).selection
            return None if value is None else str(value)

        return FormValues(
            container_id=choice("container"),
            host_ip=choice("host-ip") or ALL_ADDRESSES,
            host_port=text("host-port"),
            container_port=text("container-port"),
            protocol=choice("protocol") or "tcp",
            reason=text("reason") if self.way == "rule" else "",  # a recreate keeps no reason
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.changed()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.changed()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        """The way changed: the fields stay; the preview becomes that way's dry run."""
        event.stop()
        way: Way = "recreate" if event.pressed.id == "way-recreate" else "rule"
        if way == self.way:
            return
        self.way = way
        self.query_one("#preview-title", Label).update(WAYS[way].preview)
        self.query_one("#reason-field").display = way == "rule"
        self.query_one("#publish-box").border_subtitle = self.subtitle
        if not self.applying:
            self.query_one("#confirm", Button).label = WAYS[way].button
        self.changed()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def changed(self) -> None:
        """A field changed: check every field now, preview after a short quiet."""
        if not self._initial:
            return  # still mounting
        now = self.values().by_field()
        self.touched |= {name for name, value in now.items() if value != self._initial.get(name)}
        self.check()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE, self.start_preview)

    def check(self) -> Checked:
        """Run core's checks; show the messages of the fields touched so far (all after a confirm)."""
        values = self.values()
        self.checked = check_form(values, self.snap)
        for field in FIELDS:
            message = self.checked.errors.get(field)
            shown = message if (field in self.touched or self.attempted) else None
            if field == "container" and shown is None and field not in self.touched:
                shown = self.note
            msg = self.query_one(f"#{field}-msg", Static)
            msg.update(literal(f"✖ {shown}") if shown else "")
            msg.display = bool(shown)
            widget = self.query_one(f"#{field}")
            widget.set_class(bool(message and (field in self.touched or self.attempted)), "-invalid")
        self.query_one("#all-warning").display = values.host_ip == ALL_ADDRESSES
        return self.checked

    # ------------------------------------------------------------------ the dry run

    def start_preview(self) -> None:
        """Dry-run the request the fields make, the way chosen (unless that one is shown already)."""
        self._timer = None
        request = self.checked.request
        if request is None:
            self.previewed, self.refused, self.shown, self._preview_worker = None, None, False, None
            self.show_preview(missing_text(self.checked.errors))
            return
        if request == self.previewed and self.way == self.previewed_way:
            return  # shown already, or its dry run is running
        self.previewed, self.previewed_way, self.refused, self.shown = request, self.way, None, False
        self.show_preview(Text("dry run…", style="dim italic"))
        self._preview_worker = self.run_preview(self.way, request)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview", description="dry run")
    def run_preview(self, way: Way, request: PublishRequest):
        if way == "recreate" and self.recreate is not None:
            return self.recreate(adding(request))
        return self.preview(request)

    @work(thread=True, exclusive=True, exit_on_error=False, group="apply", description="publish")
    def run_apply(self, way: Way, request: PublishRequest):
        if way == "recreate" and self.recreate is not None:
            return self.recreate(for_real(adding(request)))
        return self.apply(request)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a dry run or the change ends."""
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR) or not self.is_attached:
            return
        worker = event.worker
        if worker.group == "preview":
            if worker is not self._preview_worker:
                return  # a newer dry run replaced it
            self._preview_worker = None
            if event.state == WorkerState.SUCCESS:
                recreate = self.previewed_way == "recreate"
                self.show_preview(plan_text(worker.result) if recreate else preview_text(worker.result, "publish"))
                self.shown = True
            else:
                self.refused = error_line(worker.error)
                self.show_preview(refused_text(self.refused))
        elif worker.group == "apply" and (request := self.applying_request) is not None:
            way = self.applying_way
            if event.state == WorkerState.SUCCESS:
                if way == "recreate":
                    self.notify(recreated_text(worker.result), title="Recreated", timeout=6)
                else:
                    self.notify(done_text("publish", worker.result, request.describe()), title="Published",
                                timeout=6)  # fmt: skip
                self.dismiss(request)
            else:
                self.set_applying(None)
                self.notify(error_line(worker.error), title=f"{WAYS[way].button} failed", severity="error",
                            timeout=10)  # fmt: skip

    def show_preview(self, text: Text) -> None:
        self.query_one("#preview", Static).update(text)

    # ------------------------------------------------------------------ confirm / cancel

    def set_applying(self, request: PublishRequest | None) -> None:
        self.applying, self.applying_request = request is not None, request
        if request is not None:
            self.applying_way = self.way
        for way in self.query("#way"):
            way.disabled = self.applying  # the way cannot change under a running change
        button = self.query_one("#confirm", Button)
        button.disabled = self.applying
        button.label = WAYS[self.applying_way].running if self.applying else WAYS[self.way].button

    def action_confirm(self) -> None:
        """Apply the request in a worker (once: the button stays disabled until it ends).

        A recreate restarts the container: it runs only once the plan of this very request is shown."""
        if self.applying:
            return
        self.attempted = True
        checked = self.check()
        request = checked.request
        if request is None:
            self.notify("Some fields are not right yet: see the messages under them", severity="warning", timeout=4)
            return
        current = request == self.previewed and self.way == self.previewed_way
        if current and self.refused is not None:
            self.notify(self.refused, title=f"Cannot {WAYS[self.way].verb}", severity="error", timeout=8)
            return
        if self.way == "recreate" and not (current and self.shown):
            if self._timer is not None:
                self._timer.stop()
                self.start_preview()
            self.notify("The recreate's plan is not shown yet: confirm once it is (the container restarts)",
                        severity="warning", timeout=4)  # fmt: skip
            return
        self.set_applying(request)
        self.run_apply(self.way, request)

    def action_cancel(self) -> None:
        if self.applying:
            self.notify(f"{WAYS[self.applying_way].running} wait until it ends", severity="warning", timeout=3)
            return
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()
