"""Run the portscope CLI from this checkout, in a namespace or here, with no Docker socket; summarise `list --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.sandbox.netns import NetNs

REPO = Path(__file__).resolve().parents[2]
NO_DOCKER = "unix:///nonexistent/docker.sock"


def portscope(ns: NetNs | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m portscope ARGS` inside `ns` (None: in this namespace, for offline reads); fails on a non-zero exit."""
    env = dict(os.environ, DOCKER_HOST=NO_DOCKER, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "portscope", *args]
    if ns is not None:
        return ns.run(argv, env=env, cwd=REPO)
    return subprocess.run(argv, env=env, cwd=REPO, check=True, capture_output=True, text=True)


def portscope_json(ns: NetNs | None, *args: str) -> dict:
    """The JSON document `portscope ARGS` prints."""
    return json.loads(portscope(ns, *args).stdout)


def binding_summary(doc: dict) -> list[tuple]:
    """Each binding of a `list --json` document as (id, owner, hooks, evidence rules), sorted: what two reads
    of the same rules must agree on."""
    return sorted(
        (
            b["id"],
            b["owner"],
            tuple(b["hooks"]),
            tuple((r["table"], r["chain"], r["position"], r["text"]) for r in b["evidence"]["rules"]),
        )
        for b in doc["bindings"]
    )


def on_path(tmp_path: Path) -> str:
    """A PATH whose `portscope` (in tmp_path/bin) runs this checkout, as an installed one would."""
    folder = tmp_path / "bin"
    folder.mkdir()
    wrapper = folder / "portscope"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m portscope "$@"\n')
    wrapper.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"
