"""The state file and its lock: /var/lib/portscope/state.json (dir 0700, file 0600), atomic writes.

`PORTSCOPE_STATE_DIR` overrides the directory (tests). Every portscope process that reads or
changes rules holds an exclusive `flock` on `lock` in the same directory for the whole change.
Every file there is opened through `trusted` (no symlink followed, ours, not writable by others),
and a save never drops a stored binding that the command did not remove itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Collection, Iterator

from portscope.core.publish.model import State
from portscope.core.publish.state_schema import SCHEMA, parse_state
from portscope.core.publish.trusted import StateError, check_entry, open_dir, open_file, read_file, replace_file

__all__ = ["SCHEMA", "StateError", "ensure_dir", "load", "locked", "save", "state_dir"]

DEFAULT_DIR = "/var/lib/portscope"
STATE, LOCK, AUDIT = "state.json", "lock", "audit.log"
MAX_STATE_BYTES = 64 * 1024 * 1024


def state_dir() -> str:
    return os.environ.get("PORTSCOPE_STATE_DIR") or DEFAULT_DIR


def ensure_dir(path: str) -> str:
    """Create the directory 0700 if missing (and tighten it if it exists); refuse one we cannot trust."""
    os.close(open_dir(path, create=True))
    return path


@contextlib.contextmanager
def locked(path: str | None = None, create: bool = True) -> Iterator[str]:
    """Hold the exclusive portscope lock; yields the state directory.

    Every file the command may touch is checked first, so an untrusted one is refused before any
    change. `create=False`: a missing directory is a StateError instead of a new, empty state.
    """
    folder = path or state_dir()
    dir_fd = open_dir(folder, create=create)
    try:
        for name in (STATE, AUDIT):
            check_entry(dir_fd, folder, name)
        fd = open_file(dir_fd, folder, LOCK, os.O_RDWR | os.O_CREAT)
    finally:
        os.close(dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)  # closing releases the lock


def load(folder: str, required: bool = False) -> State:
    """The stored state; an empty one when there is no file yet (a StateError when `required`)."""
    doc = _read(folder)
    if doc is None:
        if required:
            raise StateError(
                f"{os.path.join(folder, STATE)} is missing: restore it (portscope keeps the rules in force)"
            )
        return State()
    return parse_state(doc, os.path.join(folder, STATE))


def save(folder: str, state: State, removed: Collection[str] = ()) -> None:
    """Write atomically: a temp file in the same directory, fsync, rename, fsync the directory.

    Refused (nothing written) when a binding stored on disk is missing from `state` and not in
    `removed`: only a command that removes a binding may drop it.
    """
    dir_fd = open_dir(folder, create=False)
    try:
        _keeps_bindings(folder, state, removed)
        doc: dict = {"schema": SCHEMA, "bindings": [b.to_dict() for b in state.bindings]}
        if state.backend:
            doc["backend"] = state.backend
        doc.update(state.extras())
        data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
        replace_file(dir_fd, STATE, data)
    finally:
        os.close(dir_fd)


def _read(folder: str) -> object | None:
    """The decoded state.json, or None when there is none (the directory or the file)."""
    raw = read_file(folder, STATE, MAX_STATE_BYTES)
    if raw is None:
        return None
    path = os.path.join(folder, STATE)
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise StateError(f"cannot read {path}: JSON nested too deeply (fix or move the file)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"cannot read {path}: {exc} (fix or move the file)") from None


def _keeps_bindings(folder: str, state: State, removed: Collection[str]) -> None:
    doc = _read(folder)
    if doc is None:
        return
    on_disk = parse_state(doc, os.path.join(folder, STATE))
    kept = {b.id for b in state.bindings} | set(removed)
    lost = [b.id for b in on_disk.bindings if b.id not in kept]
    if lost:
        raise StateError(
            f"{os.path.join(folder, STATE)} changed under portscope ({', '.join(lost[:3])} would be dropped): "
            "nothing was saved; run the command again"
        )
