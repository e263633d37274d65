"""The console-script entry point: `portscope` and `python -m portscope`."""

from __future__ import annotations

import sys

from portscope.cli.main import main


def run() -> None:
    """`portscope ...`: run the command line and exit with its status."""
    sys.exit(main())
