"""`-o/--output json|table|wide`, as docker and kubectl take it, with `--json` (and `--wide`) as aliases."""

from __future__ import annotations

import argparse


def add_output_option(parser: argparse.ArgumentParser, schema: str, wide: bool = False) -> None:
    """Add `-o/--output FORMAT` and `--json`; `wide`: also `-o wide` / `--wide`. All set `output`: the format,
    or None when none is given (the table).

    The options are mutually exclusive: `-o table --json` is a usage error, not a guess. (The default
    is None rather than "table": argparse sees a conflict only with a value other than the default.)
    """
    formats = ("table", "wide", "json") if wide else ("table", "json")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-o",
        "--output",
        choices=formats,
        help=f"output format: {', '.join(formats)} (default table)",
    )
    group.add_argument("--json", dest="output", action="store_const", const="json", help=f"= -o json (schema {schema})")
    if wide:
        group.add_argument(
            "--wide",
            dest="output",
            action="store_const",
            const="wide",
            help="= -o wide: every column, even wider than the terminal",
        )
