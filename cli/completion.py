"""`portscope completion bash|zsh|fish`: a completion script generated from the argparse parser by shtab.

Options that take a file (`--snapshot`, `--rules`, capture's `-o`) complete file names; choices
(`--proto`, `--backend`, `-o json|table|wide`, the shells here) complete their values. Where it is
cheap, arguments complete from the host through the hidden `portscope __complete KIND`
(cli/complete_names.py): publish's CONTAINER from the engine's running containers, block's BINDING
from the ports the engine publishes, unpublish's and unblock's from the state file.
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "fish")
#: Options whose value is a file to read or write (when they take no fixed choices).
_FILE_DESTS = frozenset({"snapshot", "rules", "output"})
#: (command, positional argument) -> the `portscope __complete` kind that completes it.
NAMED = {
    ("publish", "container"): "containers",
    ("block", "binding"): "ports",
    ("unpublish", "binding"): "bindings",
    ("unblock", "binding"): "blocks",
}


def add_completion_command(sub: argparse._SubParsersAction) -> None:
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

    from portscope.cli.main import build_parser

    parser = build_parser()
    for name, sub in _subparsers(parser).items():
        for action in sub._actions:
            kind = NAMED.get((name, action.dest))
            if kind is not None and not action.option_strings:
                complete = shtab.cmd(f"portscope __complete {kind} 2>/dev/null")
            elif action.dest in _FILE_DESTS and action.option_strings and action.choices is None:
                complete = shtab.FILE
            else:
                continue
            action.complete = complete  # type: ignore[attr-defined]  # shtab's hook: an attribute it reads
    return shtab.complete(parser, shell=shell)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}
