"""`x`: unpublish one of portscope's bindings, or block (unblock) another owner's — after seeing the exact rules.

Which of the three it is comes from core's state (read in a worker: a block is portscope's stored
binding); the rules come from a dry run of the very call the confirm makes, in a worker too.
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
from textual.widgets import Button, Footer, Label, Static
from textual.worker import Worker, WorkerState

from portscope.core.model import Binding as PortBinding
from portscope.core.publish.model import StoredBinding
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
    ) -> None:
        """`binding` is the Ports view's; `read_state`, `preview` and `apply` run in a worker."""
        super().__init__()
        self.binding = binding
        self.read_state = read_state
        self.preview = preview
        self.apply = apply
        self.change: BindingChange | None = None
        self.ready = False  # the dry run succeeded: confirm may apply
        self.applying = False

    def compose(self) -> ComposeResult:
        with Vertical(id="change-box") as box:
            box.border_title = literal(f"Unpublish / block {subject(self.binding)}")
            box.border_subtitle = "y confirm · esc cancel"
            yield Static(literal(f"owner {self.binding.owner} · {self.binding.id}", "dim"), id="change-subject")
            yield Static(Text("Reading portscope's state…", style="dim italic"), id="change-explain")
            yield Label("Rules (dry run)", id="change-preview-title")
            with VerticalScroll(id="change-preview-scroll"):
                yield Static(Text("dry run…", style="dim italic"), id="change-preview")
            with Horizontal(id="change-buttons"):
                yield Button("Confirm", variant="error", id="confirm", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        self.run_read_state()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, exit_on_error=False, group="state", description="read portscope's state")
    def run_read_state(self) -> list[StoredBinding]:
        return self.read_state()

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview", description="dry run")
    def run_preview(self, change: BindingChange):
        return self.preview(change)

    @work(thread=True, exclusive=True, exit_on_error=False, group="apply", description="apply")
    def run_apply(self, change: BindingChange):
        return self.apply(change)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place the state read, the dry run and the change end."""
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
        elif worker.group == "preview" and self.change is not None:
            if ok:
                self._show(None, preview_text(worker.result, self.change.action))
                self.ready = True
                button = self.query_one("#confirm", Button)
                button.disabled = False
                button.focus()
            else:
                self._show(None, refused_text(error_line(worker.error)))
        elif worker.group == "apply" and self.change is not None:
            title = TITLES[self.change.action]
            if ok:
                self.notify(done_text(self.change.action, worker.result, self.change.describe()),
                            title=f"{title} done", timeout=6)  # fmt: skip
                self.dismiss(True)
            else:
                self._set_applying(False)
                self.notify(error_line(worker.error), title=f"{title} failed", severity="error", timeout=10)

    def _show_plan(self, change: BindingChange) -> None:
        title = TITLES[change.action]
        box = self.query_one("#change-box")
        box.border_title = literal(f"{title} {change.subject}")
        box.border_subtitle = f"y {title.lower()} · esc cancel"
        self.query_one("#confirm", Button).label = title
        self._show(Text("\n").join(literal(line) for line in explanation(change)), None)

    def _show(self, explain: Text | None, preview: Text | None) -> None:
        if explain is not None:
            self.query_one("#change-explain", Static).update(explain)
        if preview is not None:
            self.query_one("#change-preview", Static).update(preview)

    def _set_applying(self, applying: bool) -> None:
        self.applying = applying
        button = self.query_one("#confirm", Button)
        button.disabled = applying
        if self.change is not None:
            button.label = "Applying…" if applying else TITLES[self.change.action]

    # ------------------------------------------------------------------ confirm / cancel

    def action_confirm(self) -> None:
        """Apply the change shown, in a worker (once: the button stays disabled until it ends)."""
        if self.applying or self.change is None:
            return
        if not self.ready:
            self.notify("The dry run has not succeeded: nothing to confirm", severity="warning", timeout=4)
            return
        self._set_applying(True)
        self.run_apply(self.change)

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
