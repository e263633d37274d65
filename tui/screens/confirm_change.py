"""`x`: unpublish one of portscope's bindings, or block (unblock) another owner's — after seeing the exact rules.

Which of the three it is comes from core's state (read in a worker: a block is portscope's stored
binding); the rules come from a dry run of the very call the confirm makes, in a worker too. A port
Docker publishes can also be closed the Docker way: recreating its container without it
(`portscope recreate --remove`), offered beside block with the recreate's plan (a dry run, in a worker);
when core refuses it (a Compose-managed container: its advice; host network, --rm...) its one-line
reason stands in place of the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, RadioButton, RadioSet, Static
from textual.worker import Worker, WorkerState

from portscope.core.errors import PortscopeError
from portscope.core.model import Binding as PortBinding
from portscope.core.model import Container
from portscope.core.publish.model import StoredBinding
from portscope.core.recreate.run import RecreateRequest
from portscope.tui.literal import literal
from portscope.tui.publish_support import (
    TITLES,
    Applier,
    BindingChange,
    done_text,
    error_line,
    explanation,
    plan_change,
    preview_text,
    refused_text,
    subject,
)
from portscope.tui.recreate_support import (
    CLOSE_WAYS,
    CloseWay,
    Recreator,
    close_explanation,
    for_real,
    offers_recreate,
    plan_text,
    recreated_text,
    removing,
)

RECREATE = "Recreate"


class ConfirmChange(ModalScreen[bool]):
    """Dismissed with True once the change is applied, False when cancelled."""

    CSS_PATH = "confirm_change.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="change-cancel", tooltip="Close; nothing is changed"),
        Binding("y", "confirm", "Confirm", id="change-confirm", tooltip="Apply the change shown (the rules below)"),
    ]

    def __init__(
        self,
        binding: PortBinding,
        *,
        read_state: Callable[[], list[StoredBinding]],
        preview: Applier,
        apply: Applier,
        recreate: Recreator | None = None,
        container: Container | None = None,
        host: str | None = None,
    ) -> None:
        """`binding` is the Ports view's, `container` its container (as read); `read_state`, `preview`,
        `apply` and `recreate` run in a worker (without `recreate`, block is the only way for a Docker port);
        `host` names a fleet's host."""
        super().__init__()
        self.binding = binding
        self.host = host
        self.read_state = read_state
        self.preview = preview
        self.apply = apply
        self.recreate = recreate
        self.container = container
        self.change: BindingChange | None = None
        self.removal: RecreateRequest | None = None  # the recreate's dry run, when it is offered
        self.way: CloseWay = "block"  # "block" stands for the change core's state decided (unpublish, unblock...)
        self.previews: dict[CloseWay, Text] = {}
        self.succeeded: set[CloseWay] = set()  # the ways whose dry run succeeded
        self.applying = False
        self.applying_way: CloseWay = "block"

    @property
    def ready(self) -> bool:
        """The dry run of the way chosen succeeded: confirm may apply."""
        return self.way in self.succeeded

    def compose(self) -> ComposeResult:
        with Vertical(id="change-box") as box:
            box.border_title = literal(f"Unpublish / block {subject(self.binding)}")
            box.border_subtitle = "y confirm · esc cancel"
            on = f"on {self.host} · " if self.host else ""
            yield Static(literal(f"{on}owner {self.binding.owner} · {self.binding.id}", "dim"), id="change-subject")
            yield Static(Text("Reading portscope's state…", style="dim italic"), id="change-explain")
            with RadioSet(id="change-way", compact=True):
                for way, label, tip in CLOSE_WAYS:
                    yield RadioButton(label, value=way == self.way, id=f"close-{way}", tooltip=tip, compact=True)
            yield Static("", id="change-recreate-msg")
            yield Label("Rules (dry run)", id="change-preview-title")
            with VerticalScroll(id="change-preview-scroll"):
                yield Static(Text("dry run…", style="dim italic"), id="change-preview")
            with Horizontal(id="change-buttons"):
                yield Button("Confirm", variant="error", id="confirm", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#change-way").display = False
        self.query_one("#change-recreate-msg").display = False
        self.query_one("#cancel", Button).focus()
        self.run_read_state()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, exit_on_error=False, group="state", description="read portscope's state")
    def run_read_state(self) -> list[StoredBinding]:
        return self.read_state()

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview", description="dry run")
    def run_preview(self, change: BindingChange):
        return self.preview(change)

    @work(thread=True, exclusive=True, exit_on_error=False, group="recreate-plan", description="recreate dry run")
    def run_recreate_plan(self, request: RecreateRequest):
        return self.recreate(request) if self.recreate is not None else None

    @work(thread=True, exclusive=True, exit_on_error=False, group="apply", description="apply")
    def run_apply(self, way: CloseWay, change: BindingChange, removal: RecreateRequest | None):
        if way == "recreate" and self.recreate is not None and removal is not None:
            return self.recreate(for_real(removal))
        return self.apply(change)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place the state read, the dry runs and the change end."""
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR) or not self.is_attached:
            return
        worker, ok = event.worker, event.state == WorkerState.SUCCESS
        if worker.group == "state":
            if not ok:
                self._show(None, refused_text(f"cannot read portscope's state: {error_line(worker.error)}"))
                return
            self.change = plan_change(self.binding, worker.result)
            self._show_plan(self.change)
            self.run_preview(self.change)
            self._offer_recreate(self.change)
        elif worker.group == "preview" and self.change is not None:
            text = preview_text(worker.result, self.change.action) if ok else refused_text(error_line(worker.error))
            self._previewed("block", ok, text)
        elif worker.group == "recreate-plan":
            if ok:
                self._previewed("recreate", True, plan_text(worker.result))
            else:
                self._recreate_refused(error_line(worker.error))
        elif worker.group == "apply" and self.change is not None:
            self._applied(self.change, ok, worker)

    def _applied(self, change: BindingChange, ok: bool, worker: Worker) -> None:
        recreate = self.applying_way == "recreate"
        title = RECREATE if recreate else TITLES[change.action]
        if ok:
            if recreate:
                text = recreated_text(worker.result)
            else:
                text = done_text(change.action, worker.result, change.describe())
            self.notify(text, title=f"{title} done", timeout=6)
            self.dismiss(True)
        else:
            self._set_applying(False)
            self.notify(error_line(worker.error), title=f"{title} failed", severity="error", timeout=10)

    # ------------------------------------------------------------------ the ways

    def _offer_recreate(self, change: BindingChange) -> None:
        """Beside a block of a Docker port: recreate the container without it (its plan dry-run now)."""
        if change.action != "block" or self.recreate is None or not offers_recreate(self.binding):
            return
        self._show(Text("\n").join(literal(line) for line in close_explanation(change.owner)), None)
        self.query_one("#change-way").display = True
        try:
            self.removal = removing(self.binding, self.container)
        except PortscopeError as exc:
            self._recreate_refused(error_line(exc))
            return
        self.run_recreate_plan(self.removal)

    def _recreate_refused(self, message: str) -> None:
        """Core refused the recreate (Compose's advice, host network, the engine...): its reason, not the choice."""
        self.removal = None
        self.succeeded.discard("recreate")
        self.query_one("#close-recreate").display = False
        msg = self.query_one("#change-recreate-msg", Static)
        msg.update(literal(f"Recreate is not offered: {message}"))
        msg.display = True
        if self.way == "recreate":
            self.query_one("#close-block", RadioButton).value = True  # back to block (posts RadioSet.Changed)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        way: CloseWay = "recreate" if event.pressed.id == "close-recreate" else "block"
        if way != self.way and not self.applying:
            self.way = way
            self._show_way()

    def _previewed(self, way: CloseWay, ok: bool, text: Text) -> None:
        self.previews[way] = text
        if ok:
            self.succeeded.add(way)
        if way == self.way:
            self._show_way()
            if ok and isinstance(self.focused, Button) and self.focused.id == "cancel":
                self.query_one("#confirm", Button).focus()  # first dry run shown: y or enter confirms

    def _show_plan(self, change: BindingChange) -> None:
        self._show(Text("\n").join(literal(line) for line in explanation(change)), None)
        self._show_way()

    def _show_way(self) -> None:
        """Title, button and preview for the way chosen."""
        if self.change is None:
            return
        recreate = self.way == "recreate"
        title = RECREATE if recreate else TITLES[self.change.action]
        box = self.query_one("#change-box")
        box.border_title = literal(f"{title} {'without ' if recreate else ''}{self.change.subject}")
        box.border_subtitle = f"y {title.lower()} · esc cancel"
        self.query_one("#change-preview-title", Label).update("Plan (dry run)" if recreate else "Rules (dry run)")
        self._show(None, self.previews.get(self.way, Text("dry run…", style="dim italic")))
        button = self.query_one("#confirm", Button)
        button.label = title
        button.disabled = self.applying or not self.ready

    def _show(self, explain: Text | None, preview: Text | None) -> None:
        if explain is not None:
            self.query_one("#change-explain", Static).update(explain)
        if preview is not None:
            self.query_one("#change-preview", Static).update(preview)

    def _set_applying(self, applying: bool) -> None:
        self.applying = applying
        if applying:
            self.applying_way = self.way
        self.query_one("#change-way").disabled = applying
        button = self.query_one("#confirm", Button)
        button.disabled = applying
        if self.change is not None:
            idle = RECREATE if self.way == "recreate" else TITLES[self.change.action]
            button.label = ("Recreating…" if self.way == "recreate" else "Applying…") if applying else idle

    # ------------------------------------------------------------------ confirm / cancel

    def action_confirm(self) -> None:
        """Apply the way shown, in a worker (once: the button stays disabled until it ends)."""
        if self.applying or self.change is None:
            return
        if not self.ready:
            self.notify("The dry run has not succeeded: nothing to confirm", severity="warning", timeout=4)
            return
        self._set_applying(True)
        self.run_apply(self.way, self.change, self.removal)

    def action_cancel(self) -> None:
        if self.applying:
            self.notify("Applying… wait until it ends", severity="warning", timeout=3)
            return
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()
