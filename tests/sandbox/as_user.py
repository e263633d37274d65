"""Run the portscope CLI in-process in a forked child that entered a network namespace and dropped root."""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from collections.abc import Mapping

CLONE_NEWNET = 0x40000000


def run_cli_as(ns_path: str, uid: int, gid: int, env: Mapping[str, str], argv: list[str]) -> tuple[int, str, str]:
    """`portscope ARGV` as uid/gid inside the namespace at `ns_path`, with `env` added; (exit code, stdout, stderr).

    Everything is imported before the fork: the user cannot read this interpreter's files (site-packages, even
    the stdlib's codecs when the interpreter lives under /root).
    """
    import encodings.ascii
    import encodings.idna  # noqa: F401

    import docker  # noqa: F401  (the engine reader imports it lazily)

    import portscope.cli.filters
    import portscope.cli.main
    import portscope.cli.render_json
    import portscope.core.inventory
    import portscope.core.live
    import portscope.core.snapshot

    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                _setns(ns_path)
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                os.environ.update(env)
                sys.stdout, sys.stderr = out, err
                code = portscope.cli.main.main(argv)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return os.waitstatus_to_exitcode(status), out.read(), err.read()


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)
