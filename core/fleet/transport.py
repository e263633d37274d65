"""One ssh session per remote host, running the collector (collector.py) and exchanging JSON lines with it.

The user's OpenSSH client does the connecting, so ~/.ssh/config, agents, jump hosts and known_hosts apply:
`$PORTSCOPE_SSH_COMMAND` (split as a shell would, like git's GIT_SSH_COMMAND) or `ssh`, with BatchMode (nothing
ever prompts) and one multiplexed connection per host (ControlMaster, in a private 0700 folder). The remote
command is a fixed string of portscope's: `python3 -c BOOTSTRAP`, which reads the collector from stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from portscope.core.errors import PortscopeError
from portscope.core.fleet.destinations import Destination

COLLECTOR = Path(__file__).with_name("collector.py")
#: Reads a length line, then that many bytes of Python, and runs them (as __main__: the collector serves).
#: The login's DOCKER_HOST and PATH go as arguments, expanded by the remote shell: `sudo` resets the environment
#: (and sets PATH to its secure_path), and a change runs the portscope found on the login's PATH.
BOOTSTRAP = (
    "python3 -c 'import sys;s=sys.stdin.buffer;"
    'exec(compile(s.read(int(s.readline())),"portscope-collector","exec"))\' "$DOCKER_HOST" "$PATH"'
)
SUDO = "sudo -n "
#: What the remote shell says when there is no python3, and sudo when it wants a password.
_NO_PYTHON = ("python3: not found", "python3: command not found", "python3: No such file")
_SUDO_REFUSED = ("a password is required", "a terminal is required", "is not in the sudoers", "not allowed to")


class HostError(PortscopeError):
    """A host that could not be read: the message is one line saying what to do."""


def ssh_base() -> list[str]:
    """The ssh command: $PORTSCOPE_SSH_COMMAND split as a shell would, else `ssh`."""
    custom = os.environ.get("PORTSCOPE_SSH_COMMAND", "").strip()
    if custom:
        return shlex.split(custom)
    return ["ssh"]


def control_dir() -> str:
    """A folder only this user can use, for ssh's control sockets ($XDG_RUNTIME_DIR, else the temp folder)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = os.path.join(base, f"portscope-ssh-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PortscopeError(f"{path} is not a private folder of this user: remove it and try again")
    return path


def ssh_argv(dest: Destination, connect_timeout: float, *, sudo: bool = False) -> list[str]:
    """The whole argument list that starts the collector on `dest` (no shell on this side)."""
    control = os.path.join(control_dir(), "%C")
    return [
        *ssh_base(),
        *("-o", "BatchMode=yes"),
        *("-o", "ControlMaster=auto"),
        *("-o", f"ControlPath={control}"),
        *("-o", "ControlPersist=60"),
        *("-o", f"ConnectTimeout={max(1, round(connect_timeout))}"),
        *dest.ssh_args,
        (SUDO if sudo else "") + BOOTSTRAP,
    ]


class Session:
    """The collector running on one host; `request` sends one JSON request and returns its answer.

    The whole session is ended after `timeout` seconds (ssh is killed: the pending request fails)."""

    def __init__(self, dest: Destination, timeout: float, *, sudo: bool = False) -> None:
        self.dest = dest
        self.sudo = sudo
        self.timeout = timeout
        self.expired = False
        # stderr goes to a file, not a pipe: ssh's ControlPersist master could hold a pipe open
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        try:
            self.process = subprocess.Popen(
                ssh_argv(dest, min(timeout / 2, 10.0), sudo=sudo),  # connecting fails before the read
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
            )
        except OSError as exc:
            self.stderr.close()
            raise HostError(
                f"cannot run ssh ({exc.strerror}): install OpenSSH's client or set PORTSCOPE_SSH_COMMAND"
            ) from None
        self.timer = threading.Timer(timeout, self._expire)
        self.timer.daemon = True
        self.timer.start()
        code = COLLECTOR.read_bytes()
        self._send(str(len(code)).encode() + b"\n" + code)

    def _expire(self) -> None:
        self.expired = True
        self.process.kill()

    def _send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # ssh ended: the answer's absence says why

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One request and its answer; HostError (one line) when the host cannot answer or the request failed."""
        reply = self.exchange(payload)
        if "error" in reply and len(reply) == 1:
            raise HostError(f"{self.dest.text}: the collector failed: {reply['error']}")
        return reply

    def exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One request and the collector's answer as it is (an `{"error": ...}` answer too); HostError (one
        line) when the host cannot answer."""
        assert self.process.stdout is not None
        self._send(json.dumps(payload).encode() + b"\n")
        line = self.process.stdout.readline()
        if not line:
            raise HostError(self._failure())
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise HostError(f"{self.dest.text}: the collector's answer is not a JSON object (is python3 >= 3.9 there?)")
        return reply

    def _failure(self) -> str:
        """Why the session ended, in one line with what to do."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        return failure_reason(self.dest.text, code, text, sudo=self.sudo, expired=self.expired, timeout=self.timeout)

    def close(self) -> None:
        """End the collector (its input ends) and ssh; the multiplexed connection stays for ControlPersist."""
        self.timer.cancel()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def failure_reason(dest: str, code: int, stderr: str, *, sudo: bool, expired: bool, timeout: float) -> str:
    """One line for a session that ended before answering, from ssh's exit status and last message."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    last = lines[-1] if lines else f"exit status {code}"
    if expired:
        return f"{dest}: no answer within {timeout:g} s (check the host, or raise --timeout)"
    if any(marker in line for line in lines for marker in _NO_PYTHON):
        return f"{dest}: python3 is not installed there: install python3 (3.9 or later) on it"
    if sudo and code == 127 and any(line.startswith("sudo") or ": sudo: " in line for line in lines):
        return f"{dest}: sudo is not installed there: install it, or log in as root without --sudo"
    if code == 127:
        return f"{dest}: python3 is not installed there: install python3 (3.9 or later) on it"
    if sudo and any(marker in line for line in lines for marker in _SUDO_REFUSED):
        return f"{dest}: sudo asks for a password there: allow `sudo -n python3` (NOPASSWD) or log in as root"
    if code == 255:
        return f"{dest}: cannot connect: {last} (check that `ssh {dest}` works without a prompt)"
    return f"{dest}: the collector ended (exit status {code}): {last}"
