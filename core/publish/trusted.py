"""Open files in portscope's state directory only when they can be trusted.

Trusted means: reached without following a symlink (O_NOFOLLOW on the directory and on every file in
it, then checked on the opened descriptor), a directory or a regular file as expected, owned by the
effective uid (root for every command that changes rules), not group- or world-writable, and, for
files, with one link only (a hard link to another file is not ours). Every directory above it, as
written and as resolved, must be writable only by root or us, unless it is sticky (like /tmp) and the
entry below it is root's or ours: anyone else could swap the state directory. Anything else raises
`StateError` (exit 2) naming the path and what to do, before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat

from portscope.core.publish.errors import InputError

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class StateError(InputError):
    """portscope's state directory or one of its files cannot be trusted, read or found (exit 2)."""


def open_dir(path: str, create: bool) -> int:
    """A descriptor of the state directory, checked; created 0700 when missing and `create`.

    A directory that is ours but readable by others is tightened to 0700 (through the descriptor, so
    a symlink is never followed); one that others may write to is refused.
    """
    path = os.path.normpath(path)  # a trailing slash would make the kernel follow a symlinked last component
    if create:
        parent = os.path.dirname(path)
        if parent:
            check_parents(path)
            os.makedirs(parent, exist_ok=True)
    check_parents(path)
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StateError(f"cannot create the state directory {path}: {exc.strerror} (check the path)") from None
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        raise _refusal(path, exc, "directory") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode):
            raise StateError(f"{path} is not a directory: move it away")
        _check_owner(path, info)
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(dir_fd: int, folder: str, name: str, flags: int, mode: int = 0o600) -> int:
    """Open `name` in the checked directory without following a symlink; refuse it unless it is a
    regular file of ours that only we may write. Raises FileNotFoundError when it is absent (and
    O_CREAT is not in `flags`)."""
    path = os.path.join(folder, name)
    try:
        fd = os.open(name, flags | _NOFOLLOW | os.O_NONBLOCK, mode, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _refusal(path, exc, "file") from None
    try:
        check_file(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_entry(dir_fd: int, folder: str, name: str) -> None:
    """Refuse `name` in the directory (without opening it) when it exists and is not a trusted file."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    check_file(os.path.join(folder, name), info)


def check_file(path: str, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise StateError(f"{path} is a symbolic link; portscope never follows one there: remove it")
    if not stat.S_ISREG(info.st_mode):
        raise StateError(f"{path} is not a regular file: move it away")
    _check_owner(path, info)
    if info.st_nlink != 1:
        raise StateError(f"{path} has {info.st_nlink} hard links (a link to another file?): move it away")


def check_parents(path: str) -> None:
    """Refuse `path` when a directory above it (as written, or after resolving symlinks) may be changed by
    someone other than root or us; parents that do not exist yet are not checked (we create them)."""
    path = os.path.abspath(path)
    _check_chain(path)
    _check_chain(os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path)))


def _check_chain(path: str) -> None:
    folder = os.sep
    for name in path.split(os.sep)[1:]:
        entry = os.path.join(folder, name)
        try:
            _check_parent(folder, os.lstat(folder), entry)
        except FileNotFoundError:
            return
        folder = entry


def _check_parent(folder: str, info: os.stat_result, entry: str) -> None:
    """`folder` holds `entry` (the next component on the way to the state directory)."""
    if stat.S_ISLNK(info.st_mode):
        return  # the link's own folder was checked; where it points is checked on the resolved path
    trusted = (0, os.geteuid())
    if info.st_uid not in trusted:
        raise StateError(
            f"{folder} (above the state directory) is owned by uid {info.st_uid}, who could swap what is under it: "
            "use a state directory whose parents only root can change"
        )
    if not info.st_mode & _WRITABLE_BY_OTHERS:
        return
    if info.st_mode & stat.S_ISVTX:  # like /tmp: only the entry's owner (or the folder's) may rename or remove it
        owner = os.lstat(entry).st_uid
        if owner in trusted:
            return
        raise StateError(
            f"{entry} (on the way to the state directory) is owned by uid {owner}, in {folder} that others may "
            "write to: use a state directory whose parents only root can change"
        )
    raise StateError(
        f"{folder} (above the state directory) is writable by group or others, who could swap what is under it: "
        "use a state directory whose parents only root can change"
    )


def _check_owner(path: str, info: os.stat_result) -> None:
    uid = os.geteuid()
    if info.st_uid != uid:
        raise StateError(f"{path} is owned by uid {info.st_uid}, not {uid}: portscope does not trust it; move it away")
    if info.st_mode & _WRITABLE_BY_OTHERS:
        raise StateError(f"{path} is writable by group or others: portscope does not trust it; `chmod go-w` it")


def _refusal(path: str, exc: OSError, what: str) -> StateError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):  # O_DIRECTORY says ENOTDIR
        return StateError(f"{path} is a symbolic link; portscope never follows one there: remove it")
    if exc.errno == errno.ELOOP:
        return StateError(f"{path} is a symbolic link; portscope never follows one there: remove it")
    if exc.errno == errno.ENOTDIR:
        return StateError(f"{path} (or a folder above it) is not a {what} portscope can use: check the path")
    if exc.errno == errno.ENOENT:
        return StateError(f"the state directory {path} is missing: restore it (portscope keeps the rules in force)")
    return StateError(f"cannot open {path}: {exc.strerror} (check the path and permissions)")


def replace_file(dir_fd: int, name: str, data: bytes) -> None:
    """Replace `name` in the checked directory atomically: a new temp file (0600, O_EXCL, never through a
    symlink), fsync, rename over `name`, fsync the directory. On any failure the temp file is removed."""
    tmp = f".{name}-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)


def read_file(folder: str, name: str, limit: int) -> bytes | None:
    """The bytes of `name` in the state directory, or None when the directory or the file is absent.

    Opened as `open_dir`/`open_file` open them (checked, never through a symlink); a file larger than
    `limit` bytes, or one that cannot be read, is a StateError naming it.
    """
    path = os.path.join(folder, name)
    try:
        dir_fd = open_dir(folder, create=False)
    except StateError:
        if not os.path.lexists(folder):
            return None
        raise
    try:
        fd = open_file(dir_fd, folder, name, os.O_RDONLY)
    except FileNotFoundError:
        return None
    finally:
        os.close(dir_fd)
    try:
        with os.fdopen(fd, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror} (fix or move the file)") from None
    if len(raw) > limit:
        raise StateError(f"{path} is larger than {limit >> 10} KB: it is not portscope's; move it away")
    return raw
