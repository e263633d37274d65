"""`portscope completion bash|zsh|fish`: a completion script generated from the argparse parser by shtab.

Options that take a file (`--snapshot`, `--rules`, `-o`) complete file names; choices (`--proto`,
`--backend`, the shells here) complete their values. shtab is imported only by this command.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

SHELLS = ("bash", "zsh", "fish")
#: Options whose value is a file to read or write.
_FILE_DESTS = frozenset({"snapshot", "rules", "output"})


def add_completion_command(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description=(
            "Print a completion script for SHELL, e.g.\n"
            "  bash: portscope completion bash > /etc/bash_completion.d/portscope\n"
            '  zsh:  portscope completion zsh > "${fpath[1]}/_portscope"\n'
            "  fish: portscope completion fish > ~/.config/fish/completions/portscope.fish"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0


def script(shell: str) -> str:
    """The completion script for `shell`, from the whole parser."""
    import shtab

    from portscope.cli.main import build_parser  # the whole parser (no command: every subcommand's is built)

    parser = build_parser()
    _mark_files(parser, shtab.FILE)
    return shtab.complete(parser, shell=shell)


def _mark_files(parser: argparse.ArgumentParser, file_action: Any) -> None:
    """Tell shtab which options take file names, in every subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _mark_files(sub, file_action)
        elif action.dest in _FILE_DESTS and action.option_strings:
            action.complete = file_action  # type: ignore[attr-defined]
