"""The state file and its lock: /var/lib/portscope/state.json (dir 0700, file 0600), atomic writes.

`PORTSCOPE_STATE_DIR` overrides the directory (tests). Every portscope process that reads or
changes rules holds an exclusive `flock` on `lock` in the same directory for the whole change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator

from core.errors import PortscopeError
from core.publish.model import State, StoredBinding

DEFAULT_DIR = "/var/lib/portscope"
SCHEMA = "portscope.state/1"


def state_dir() -> str:
    return os.environ.get("PORTSCOPE_STATE_DIR") or DEFAULT_DIR


def ensure_dir(path: str) -> str:
    """Create the directory 0700 if missing (and tighten it if it exists)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def locked(path: str | None = None) -> Iterator[str]:
    """Hold the exclusive portscope lock; yields the state directory."""
    folder = ensure_dir(path or state_dir())
    fd = os.open(os.path.join(folder, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)  # closing releases the lock


def load(folder: str) -> State:
    """The stored state; an empty one when there is no file yet."""
    path = os.path.join(folder, "state.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return State()
    except (OSError, ValueError) as exc:
        raise PortscopeError(f"cannot read {path}: {exc} (fix or move the file)") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise PortscopeError(f"{path} is not a portscope state file ({SCHEMA}): move it away")
    backend = data.get("backend")
    return State(
        bindings=[StoredBinding.from_dict(b) for b in data.get("bindings", [])],
        backend=backend if isinstance(backend, str) else None,
    )


def save(folder: str, state: State) -> None:
    """Write atomically: a temp file in the same directory, fsync, rename, fsync the directory."""
    doc: dict = {"schema": SCHEMA, "bindings": [b.to_dict() for b in state.bindings]}
    if state.backend:
        doc["backend"] = state.backend
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(folder, "state.json"))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
