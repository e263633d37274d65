"""The audit log: one JSON line per change in `audit.log` beside the state file (0600).

The log is opened like the state (`trusted`): never through a symlink, only a regular file of ours.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
from collections.abc import Sequence

from portscope.core.publish.trusted import open_dir, open_file


def who() -> str:
    """The person behind the change: $SUDO_USER when run with sudo, else the current user."""
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        return sudo
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def record(
    folder: str,
    action: str,
    what: str,
    result: str,
    added: Sequence[str] = (),
    removed: Sequence[str] = (),
    reason: str | None = None,
) -> None:
    """Append one entry; the log is for people, so a failure to write it never undoes a change."""
    entry = {
        "when": now(),
        "who": who(),
        "action": action,
        "what": what,
        "reason": reason,
        "rules_added": list(added),
        "rules_removed": list(removed),
        "result": result,
    }
    dir_fd = open_dir(folder, create=False)
    try:
        fd = open_file(dir_fd, folder, "audit.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
