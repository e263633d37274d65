"""Helpers for offering `portscope recreate` in the TUI: pure, no Textual.

The publish form's second way (recreate the container with the port: permanent, restarts it) and the
second way of `x` on a Docker port (recreate the container without it). The requests are core's own
`RecreateRequest`s, the specs parsed by core's `parse_port_spec`; the only I/O is `recreate_container`
(core's `run.recreate`, as `portscope recreate` runs it), in a worker; the app takes it as an argument,
so tests inject their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from rich.text import Text

from portscope.core.model import Binding, Container, bracket
from portscope.core.printable import printable
from portscope.core.publish.spec import PortSpec, parse_port_spec
from portscope.core.recreate.plan import PortChange
from portscope.core.recreate.run import RecreateOutcome, RecreateRequest
from portscope.tui.publish_support import ALL_ADDRESSES, PublishRequest

#: How the publish form publishes: portscope's rules, or a recreate of the container with the port.
Way = Literal["rule", "recreate"]
#: (way, label, tooltip) of the publish form's choice, in order.
PUBLISH_WAYS: tuple[tuple[Way, str, str], ...] = (
    ("rule", "add a portscope rule (instant, no restart)",
     "portscope's own DNAT rules beside Docker's: the container keeps running; x removes them"),
    ("recreate", "recreate with this port (permanent, restarts the container)",
     "The Docker way: the container is recreated with this -p added, everything else kept; Docker then knows the port"),
)  # fmt: skip
#: How `x` closes a Docker port: a portscope DROP rule, or a recreate of the container without it.
CloseWay = Literal["block", "recreate"]
CLOSE_WAYS: tuple[tuple[CloseWay, str, str], ...] = (
    ("block", "block (instant, reversible)",
     "One DROP rule for outside traffic to the port; the container keeps running; x again unblocks it"),
    ("recreate", "recreate without this port (restarts the container)",
     "The Docker way: the container is recreated without this -p, everything else kept; the port closes for good"),
)  # fmt: skip

#: Runs one recreate (for real, or as a dry run: `request.dry_run`) and reports it as core does.
Recreator = Callable[[RecreateRequest], RecreateOutcome]


def recreate_container(request: RecreateRequest) -> RecreateOutcome:
    """Core's `portscope recreate` (root for a real one; under core's lock; the original put back on failure)."""
    from portscope.core.publish.world import require_root
    from portscope.core.recreate import run

    if not request.dry_run:
        require_root("recreate")
    return run.recreate(request)


def adding(request: PublishRequest) -> RecreateRequest:
    """`portscope recreate CONTAINER --add SPEC --dry-run` for the form's port.

    All addresses is Docker's blank host address (`-p 8081:80`: IPv4 and IPv6, as `docker run` means it).
    """
    host = "" if request.host_ip == ALL_ADDRESSES else f"{bracket(request.host_ip)}:"
    port = "" if request.host_port is None else str(request.host_port)
    spec = parse_port_spec(f"{host}{port}:{request.container_port}/{request.protocol}")
    return RecreateRequest(container=request.container, change=PortChange(add=(spec,)), dry_run=True)


def offers_recreate(binding: Binding) -> bool:
    """A port Docker publishes for a container: `x` may also recreate the container without it."""
    return binding.owner == "docker" and binding.container_id is not None


def removed_spec(binding: Binding, container: Container | None) -> PortSpec:
    """The `--remove SPEC` that names this binding as the container's HostConfig asked for it.

    A blank host address or port there (Docker's "all addresses", "an ephemeral port") stays blank, so
    core matches the binding as Docker recorded it; without a matching request, the port as seen.
    """
    port = binding.container_port or binding.target_port or 0
    asked = [
        m
        for m in (container.requested if container is not None else ())
        if m.container_port == port
        and m.protocol == binding.protocol
        and m.host_port in ("", str(binding.host_port))
        and m.host_ip in ("", "0.0.0.0", "::", binding.host_ip)
    ]
    asked.sort(key=lambda m: (m.host_port != str(binding.host_port), m.host_ip != binding.host_ip))
    if not asked:
        return PortSpec(container_port=port, protocol=binding.protocol, host_port=binding.host_port)
    first = asked[0]
    return PortSpec(
        container_port=port,
        protocol=binding.protocol,
        host_ip=first.host_ip or None,
        host_port=int(first.host_port) if first.host_port else None,
    )


def removing(binding: Binding, container: Container | None) -> RecreateRequest:
    """`portscope recreate CONTAINER --remove SPEC --dry-run` for the binding `x` was pressed on."""
    name = binding.container_name or binding.container_id or ""
    spec = parse_port_spec(str(removed_spec(binding, container)))  # what `--remove` would parse
    return RecreateRequest(container=name, change=PortChange(remove=(spec,)), dry_run=True)


def for_real(request: RecreateRequest) -> RecreateRequest:
    """The request a confirm runs: the very one whose plan is shown, not a dry run."""
    return replace(request, dry_run=False)


def close_explanation(owner: str) -> list[str]:
    """What the two ways of closing a Docker port do, for the confirmation."""
    return [
        f"{owner} published this port, not portscope. Two ways to close it:",
        "· block: one DROP rule drops outside traffic to it; instant, the container keeps running, and",
        "  it is reversible (x on this binding again unblocks it);",
        "· recreate without this port: the container is recreated without this -p, everything else kept;",
        "  permanent, and the container restarts (the plan below says what happens, step by step).",
    ]


def plan_text(outcome: RecreateOutcome) -> Text:
    """A recreate dry run's report: core's plan lines (the port change, the steps, the `docker run`), warnings."""
    out = Text()
    out.append("would recreate (the container restarts):\n", style="bold")
    for line in outcome.lines:
        style = "red" if line.startswith("  - ") else "green" if line.startswith("  + ") else ""
        out.append(f"{printable(line)}\n", style=style)
    for line in outcome.warnings:
        out.append(f"⚠ {printable(line)}\n", style="yellow")
    out.rstrip()
    return out


def recreated_text(outcome: RecreateOutcome) -> str:
    """The notification after a recreate: `Recreated web (0123456789ab -> ba9876543210)`."""
    new = (outcome.new_id or "")[:12]
    return f"Recreated {outcome.plan.name} ({outcome.plan.old_id[:12]} -> {new})"
