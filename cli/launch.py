"""The console-script entry point: starts reading the rules, then imports the rest of portscope.

For a one-shot read of the live host (`list`, `conflicts`, `capture` without `--snapshot` or
`--rules`), the rule commands are spawned before `cli.main` and `core` are imported, so the
kernel dump (~0.4 s at 10,000 ports) and the imports (~0.1 s) overlap. Keep this module's own
imports to the standard library and `core.rules.prefetch`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

_LIVE_READS = frozenset({"list", "conflicts", "capture"})
_OFFLINE = ("--sn", "--ru", "-h", "--h")  # --snapshot / --rules (argparse accepts prefixes), help


def reads_live_once(argv: Sequence[str]) -> bool:
    """True when `argv` is a one-shot command that reads the live kernel rules."""
    if not argv or argv[0] not in _LIVE_READS or os.environ.get("PORTSCOPE_NO_PREFETCH"):
        return False
    return not any(arg.startswith(_OFFLINE) for arg in argv[1:])


def run() -> None:
    """`portscope ...`"""
    argv = sys.argv[1:]
    one_shot = reads_live_once(argv)
    if one_shot:
        from portscope.core.rules import prefetch

        prefetch.start(scope="nat" if argv[0] == "list" else "all")
    from portscope.cli.main import main

    code = main(argv)
    if one_shot:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """Exit without tearing down the heap: freeing a 10,000-port read object by object takes ~50 ms."""
    from portscope.core.rules import prefetch

    prefetch.discard()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        code = code or 1
    os._exit(code)
