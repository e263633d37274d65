"""The argparse command line: every command in the help, usage errors in one line (exit 2), `-o` and its aliases."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from portscope.cli.main import build_parser, main

#: The commands the README documents (others may follow them).
DOCUMENTED = (
    "list", "conflicts", "capture", "ephemeral", "tui",
    "publish", "unpublish", "block", "unblock", "apply", "reconcile", "status", "watch",
    "version", "completion",
)  # fmt: skip
SAMPLE = "examples/sample.json"


def _listed_commands(parser: argparse.ArgumentParser) -> list[str]:
    """The commands `portscope -h` lists (those with a help text)."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [choice.dest for choice in action._get_subactions()]


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


COMMANDS = _listed_commands(build_parser())


def test_the_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(DOCUMENTED) <= set(COMMANDS)
    assert set(_choices(build_parser())) - set(COMMANDS) == {"__complete"}  # the only hidden one
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)
    assert "__complete" not in out
    assert "exit status:" in out and "6  the kernel refused a rule" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: portscope {command}")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["lst"], "invalid choice: 'lst'"),
        (["list", "--port", "eighty"], "invalid int value: 'eighty'"),
        (["list", "--proto", "icmp"], "invalid choice: 'icmp'"),
        (["list", "-o", "yaml"], "invalid choice: 'yaml'"),
        (["list", "-o", "table", "--json"], "not allowed with argument"),
        (["list", "--json", "-o", "table"], "not allowed with argument"),
        (["list", "--json", "--wide"], "not allowed with argument"),
        (["conflicts", "-o", "wide"], "invalid choice: 'wide'"),
        (["capture"], "the following arguments are required: -o/--output"),
        (["publish", "web"], "the following arguments are required"),
        (["list", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err, err
    assert says in err and err.startswith("portscope") and "--help)" in err


@pytest.mark.parametrize(
    ("argv", "output"),
    [
        (["list"], None),
        (["list", "-o", "json"], "json"),
        (["list", "--output", "wide"], "wide"),
        (["list", "--json"], "json"),
        (["list", "--wide"], "wide"),
        (["list", "--json", "--json"], "json"),
        (["conflicts", "--json"], "json"),
        (["conflicts", "-o", "table"], "table"),
        (["ephemeral", "-o", "json"], "json"),
        (["version", "--json"], "json"),
        (["version"], None),
        (["status", "-o", "json"], "json"),
        (["status", "--json"], "json"),
    ],
)
def test_output_format_and_its_aliases(argv: list[str], output: str | None) -> None:
    """`output`: the format asked for; None (the table) when none is."""
    assert build_parser().parse_args(argv).output == output


def test_capture_keeps_o_for_its_file() -> None:
    assert build_parser().parse_args(["capture", "-o", "host.json"]).output == "host.json"


def test_a_spec_that_looks_like_an_option_reaches_the_command() -> None:
    """`publish web -1:80`: the command names what is wrong with the spec (argparse would print its usage)."""
    args = build_parser().parse_args(["publish", "web", "-1:80", "--dry-run"])
    assert (args.container, args.spec, args.dry_run) == ("web", "-1:80", True)


@pytest.mark.parametrize("flag", [["-o", "json"], ["--json"]])
def test_list_json_from_either_spelling_is_the_same(flag: list[str]) -> None:
    done = [
        subprocess.run(
            [sys.executable, "-m", "portscope", "list", *f, "--snapshot", SAMPLE],
            capture_output=True, text=True, check=True,
        ).stdout
        for f in (flag, ["--json"])
    ]  # fmt: skip
    assert done[0] == done[1] and done[0].startswith('{"schema":"portscope.list/1"')


def test_list_wide_from_either_spelling_is_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for flag in (["-o", "wide"], ["--wide"]):
        assert main(["list", *flag, "--snapshot", SAMPLE]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and "FAMILY" in outputs[0]
