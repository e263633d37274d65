"""What `recreate --dry-run` prints: the port change, the swap's steps, and the `docker run` that creates the same."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from portscope.core.recreate.plan import RecreatePlan

_NS = 1_000_000_000


def describe(plan: RecreatePlan, timeout: float) -> list[str]:
    """The plan, one line a step."""
    lines = [f"recreate {plan.name} ({plan.old_id[:12]}), image {plan.image}"]
    before, after = _flat(plan.port_bindings_before), _flat(plan.port_bindings_after)
    lines += [f"  - {p}" for p in sorted(before - after)] + [f"  + {p}" for p in sorted(after - before)]
    lines += [f"  = {p}" for p in sorted(before & after)]
    if plan.carried_volumes:
        lines.append(f"  anonymous volumes kept: {', '.join(v[:12] for v in plan.carried_volumes)}")
    steps = ["stop it" if plan.was_running else None, f"rename it to {plan.aside_name}",
             f"create the new {plan.name}", *(f"connect it to {net}" for net, _ in plan.connect),
             (f"start it, wait until {'healthy' if plan.health_check else 'running'} (up to {timeout:g} s)"
              if plan.was_running else "leave it stopped, as the original was"),
             "remove the original (its volumes stay)"]  # fmt: skip
    lines.append("steps: " + "; ".join(s for s in steps if s))
    lines.append("as docker run: " + shlex.join(docker_run(plan)))
    return lines


def _flat(bindings: Mapping[str, list[dict[str, str]]]) -> set[str]:
    out = set()
    for port, entries in bindings.items():
        for b in entries:
            host = b.get("HostIp") or ""
            host = f"[{host}]" if ":" in host else host
            out.add(f"{host + ':' if host else ''}{b.get('HostPort') or ''}:{port}")
    return out


def docker_run(plan: RecreatePlan) -> list[str]:
    """`docker run` arguments for the new container's main settings (the create body is the full truth)."""
    body: Mapping[str, Any] = plan.create_body
    host: Mapping[str, Any] = body.get("HostConfig") or {}
    argv = ["docker", "run", "-d", "--name", plan.name]
    if body.get("Hostname"):
        argv += ["--hostname", body["Hostname"]]
    if body.get("User"):
        argv += ["--user", body["User"]]
    if body.get("WorkingDir"):
        argv += ["--workdir", body["WorkingDir"]]
    for env in body.get("Env") or []:
        argv += ["-e", env]
    for key, value in sorted((body.get("Labels") or {}).items()):
        argv += ["--label", f"{key}={value}"]
    for line in sorted(_flat(plan.port_bindings_after)):
        argv += ["-p", line.lstrip(":")]
    mode = host.get("NetworkMode")
    if mode and mode != "default":
        argv += ["--network", mode]
    for bind in host.get("Binds") or []:
        argv += ["-v", bind]
    for path, options in sorted((host.get("Tmpfs") or {}).items()):
        argv += ["--tmpfs", f"{path}:{options}" if options else path]
    policy = host.get("RestartPolicy") or {}
    if policy.get("Name") and policy["Name"] != "no":
        count = policy.get("MaximumRetryCount")
        argv += [
            "--restart",
            f"{policy['Name']}:{count}" if policy["Name"] == "on-failure" and count else policy["Name"],
        ]
    for cap in host.get("CapAdd") or []:
        argv += ["--cap-add", cap]
    for cap in host.get("CapDrop") or []:
        argv += ["--cap-drop", cap]
    check = body.get("Healthcheck") or {}
    if check.get("Test") and check["Test"][0] == "CMD-SHELL":
        argv += ["--health-cmd", check["Test"][1]]
        if check.get("Interval"):
            argv += ["--health-interval", f"{check['Interval'] / _NS:g}s"]
    if body.get("Entrypoint"):
        argv += ["--entrypoint", body["Entrypoint"][0]]
    return [*argv, str(body.get("Image")), *(body.get("Cmd") or [])]


def ready_timeout(plan: RecreatePlan, given: float | None) -> float:
    """How long to wait for the new container: `given`, else what its health check needs, else 30 s."""
    if given is not None:
        return given
    if not plan.health_check:
        return 30.0
    check = plan.create_body.get("Healthcheck") or {}
    interval = (check.get("Interval") or 30 * _NS) / _NS
    per_try = (check.get("Timeout") or 30 * _NS) / _NS
    start = (check.get("StartPeriod") or 0) / _NS
    return start + (check.get("Retries") or 3) * (interval + per_try) + 10
