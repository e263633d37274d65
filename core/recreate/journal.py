"""The swap's record in the state directory (`recreate.json`): where an interrupted swap stopped.

Written (atomically, through `trusted`) before each step that changes the engine, so that
`portscope recreate --resume` can finish a swap whose replacement runs, or undo it otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from typing import Literal

from portscope.core.publish.trusted import StateError, open_dir, read_file, replace_file

NAME = "recreate.json"
Step = Literal["planned", "stopped", "renamed", "created", "started"]
STEPS: tuple[Step, ...] = ("planned", "stopped", "renamed", "created", "started")
_ID = re.compile(r"[0-9a-f]{64}")
_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


@dataclass(frozen=True, slots=True)
class SwapRecord:
    """One swap in progress."""

    name: str
    aside: str
    old_id: str
    was_running: bool
    health: bool
    timeout: float
    step: Step = "planned"
    new_id: str | None = None

    def at(self, step: Step, new_id: str | None = None) -> SwapRecord:
        return replace(self, step=step, new_id=new_id or self.new_id)


def write(folder: str, record: SwapRecord) -> None:
    """Replace the record atomically (temp file, fsync, rename, fsync the directory)."""
    dir_fd = open_dir(folder, create=True)
    try:
        replace_file(dir_fd, NAME, json.dumps(asdict(record), indent=1, sort_keys=True).encode())
    finally:
        os.close(dir_fd)


def read(folder: str) -> SwapRecord | None:
    """The swap in progress, or None; StateError when the record is not one portscope wrote."""
    raw = read_file(folder, NAME, 1 << 16)
    if raw is None:
        return None
    try:
        return _parse(json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError, KeyError) as exc:
        path = os.path.join(folder, NAME)
        raise StateError(f"{path} is not a swap record ({exc}): inspect it, then remove it") from None


def clear(folder: str) -> None:
    dir_fd = open_dir(folder, create=False)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(NAME, dir_fd=dir_fd)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _parse(doc: object) -> SwapRecord:
    if not isinstance(doc, dict):
        raise TypeError("not an object")
    record = SwapRecord(
        name=_checked(doc["name"], _CONTAINER_NAME, "name"),
        aside=_checked(doc["aside"], _CONTAINER_NAME, "aside"),
        old_id=_checked(doc["old_id"], _ID, "old_id"),
        was_running=_boolean(doc["was_running"], "was_running"),
        health=_boolean(doc["health"], "health"),
        timeout=float(doc["timeout"]),
        step=doc["step"] if doc["step"] in STEPS else _bad("step"),
        new_id=None if doc.get("new_id") is None else _checked(doc["new_id"], _ID, "new_id"),
    )
    return record


def _checked(value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"bad {what}")
    return value


def _boolean(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"bad {what}")
    return value


def _bad(what: str) -> Step:
    raise ValueError(f"bad {what}")
