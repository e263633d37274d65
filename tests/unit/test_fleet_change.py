"""Changing another host (core.fleet.change, `publish --host`): the remote argv built from a checked request gives
the same request back through the CLI's own parser (Hypothesis); portscope run on the "remote" host through the
real collector and bootstrap (an ssh stand-in runs the remote command here); refusals, one line each."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from portscope.cli.main import _fleet_options_after_command, build_parser, main
from portscope.cli.publish_cmds import BACKEND_CHOICES
from portscope.core.fleet import collector
from portscope.core.fleet.change import (
    HOST_FAILURE,
    RemoteRun,
    change_document,
    change_on_host,
    remote_change,
    request_argv,
    run_on_host,
)
from portscope.core.fleet.destinations import parse_destination
from portscope.core.publish.commit import Outcome
from portscope.core.publish.errors import InputError
from portscope.core.publish.model import StoredBinding
from portscope.core.publish.ops import (
    BindingRequest,
    Change,
    ChangeAction,
    PublishRequest,
    parse_change,
    parse_publish,
)

STANDIN = Path(__file__).with_name("fleet_ssh_standin.py")
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSCOPE_SSH_COMMAND", f"{sys.executable} {STANDIN}")


@pytest.fixture
def installed(standin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """portscope installed on the "remote" host: this checkout's venv first on its PATH."""
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def not_installed(standin: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No portscope there: the standard folders only, nothing importable from the working folder."""
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("no /usr/bin/python3")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- the argv, parsed back

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)
ports = st.integers(1, 65535).map(str)
protos = st.sampled_from(["", "/tcp", "/udp", "/sctp", "/TCP", "/Udp"])
reasons = st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=30)
host_parts = st.one_of(
    st.just(""),
    ports.map(lambda p: f"{p}:"),
    st.tuples(v4, ports | st.just("")).map(lambda t: f"{t[0]}:{t[1]}:"),
    st.tuples(v6, ports | st.just("")).map(lambda t: f"[{t[0]}]:{t[1]}:"),
)
specs = st.tuples(host_parts, ports, protos).map(lambda t: "".join(t))
targets = names | v4 | v6
refs = st.one_of(
    st.from_regex(r"ps-[0-9a-f]{8}", fullmatch=True),
    st.tuples(st.sampled_from(["", "[::]:", "127.0.0.1:", "0.0.0.0:"]), ports, protos).map(lambda t: "".join(t)),
    st.tuples(v4, ports).map(lambda t: f"ipv4/tcp/0.0.0.0:{t[1]}->{t[0]}:80"),
)


def _parsed_back(argv: list[str]) -> tuple[argparse.Namespace, PublishRequest | BindingRequest]:
    """What the CLI (here, as on the other host) makes of `argv`: its options and the request it checks."""
    args = build_parser().parse_args(_fleet_options_after_command(argv))
    if args.command == "publish":
        return args, parse_publish(args.container, args.spec, reason=args.reason, force=args.force)
    return args, parse_change(args.command, args.binding, reason=getattr(args, "reason", None))


@given(
    target=targets,
    spec=specs,
    reason=reasons,
    force=st.booleans(),
    dry_run=st.booleans(),
    output_json=st.booleans(),
    backend=st.sampled_from(BACKEND_CHOICES),
)
def test_publish_argv_parses_back_to_the_same_request(
    target: str, spec: str, reason: str | None, force: bool, dry_run: bool, output_json: bool, backend: str
) -> None:
    try:
        request = parse_publish(target, spec, reason=reason, force=force)
    except InputError:
        assume(False)
        return
    argv = request_argv(request, dry_run=dry_run, output_json=output_json, backend=backend)
    args, again = _parsed_back(argv)
    assert again == request
    assert (args.dry_run, args.json, args.backend, args.host) == (dry_run, output_json, backend, [])


@given(
    action=st.sampled_from(["unpublish", "block", "unblock"]),
    text=refs,
    reason=reasons,
    dry_run=st.booleans(),
    output_json=st.booleans(),
)
def test_binding_argv_parses_back_to_the_same_request(
    action: ChangeAction, text: str, reason: str | None, dry_run: bool, output_json: bool
) -> None:
    try:
        request = parse_change(action, text, reason=reason if action == "block" else None)
    except InputError:
        assume(False)
        return
    args, again = _parsed_back(request_argv(request, dry_run=dry_run, output_json=output_json))
    assert again == request
    assert (args.dry_run, args.json) == (dry_run, output_json)


def test_the_argv_is_options_then_operands() -> None:
    request = parse_publish("web", "127.0.0.1:8080:80/udp", reason="-x --force", force=True)
    assert request_argv(request, dry_run=True) == [
        "publish", "--json", "--dry-run", "--force", "--reason=-x --force", "--", "web", "127.0.0.1:8080:80/udp",
    ]  # fmt: skip
    request_v6 = parse_publish("fd00::2", "[::]::80")
    assert request_argv(request_v6, dry_run=False, output_json=False) == ["publish", "--", "fd00::2", "[::]::80/tcp"]
    block = parse_change("block", "8080/udp", reason="maintenance")
    assert request_argv(block, dry_run=False, backend="nftables") == [
        "block", "--json", "--backend", "nftables", "--reason=maintenance", "--", "8080/udp",
    ]  # fmt: skip
    assert ipaddress.ip_address(request_v6.target)


# --------------------------------------------------------------------------- portscope on the other host


def test_portscope_runs_there_and_its_exit_status_and_error_come_back(installed: None) -> None:
    dest = parse_destination("h1")
    run = run_on_host(dest, ["--version"])
    assert run == RemoteRun(0, run.stdout, "", "") and run.stdout.startswith("portscope ")
    refused = run_on_host(dest, ["publish", "--json", "--", "web", "0"])
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.message == "h1: '0': container port '0' is not a port number: use 1-65535"


def test_portscope_missing_there_is_one_line(not_installed: None) -> None:
    run = run_on_host(parse_destination("h1"), ["--version"])
    assert run.returncode == HOST_FAILURE
    assert run.message == (
        "h1: portscope is not installed there: install it there to change its rules (reading needs nothing)"
    )


def test_an_unreachable_host_is_one_line_and_never_raises(standin: None) -> None:
    request = parse_publish("web", "8080:80")
    result = change_on_host(parse_destination("unreachable-1"), request, dry_run=True)
    assert (result.host, result.returncode, result.document, result.ok) == ("unreachable-1", HOST_FAILURE, None, False)
    assert result.message.startswith("unreachable-1: cannot connect: ") and "\n" not in result.message


def test_portscope_taking_too_long_there_is_one_line(
    standin: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    slow = tmp_path / "portscope"  # stands in for a portscope that hangs: the collector's timeout is tested
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    run = run_on_host(parse_destination("h1"), ["--version"], timeout=0.5)
    assert run.returncode == HOST_FAILURE
    assert run.message == "h1: portscope there did not finish within 0.5 s (check the host, or raise --timeout)"


def test_the_collector_refuses_arguments_that_are_not_strings() -> None:
    assert collector.answer({"op": "portscope", "args": ["list", 3]}) == {
        "error": "the arguments must be a list of strings"
    }


def test_a_remote_answer_without_json_is_one_line() -> None:
    result = remote_change("h2", RemoteRun(0, "published ps-1 ...\n", "", ""))
    assert (result.returncode, result.document) == (HOST_FAILURE, None)
    assert result.message == "h2: portscope there printed no JSON document: update it there"
    failed = remote_change("h2", RemoteRun(6, "", "portscope: the kernel refused\n", "h2: the kernel refused"))
    assert (failed.returncode, failed.message) == (6, "h2: the kernel refused")


def test_the_change_document() -> None:
    binding = StoredBinding(
        id="ps-1a2b3c4d", kind="publish", host_ip="0.0.0.0", host_port=8080, protocol="tcp", container_port=80
    )
    outcome = Outcome(added=["-A PORTSCOPE x"], removed=[])
    change = Change(binding=binding, outcome=outcome, warnings=("w",), notes=("n",))
    assert change_document("publish", change, dry_run=True) == {
        "action": "publish", "dry_run": True, "binding": "ps-1a2b3c4d", "host_port": 8080,
        "added": ["-A PORTSCOPE x"], "removed": [], "notes": ["n"], "warnings": ["w"],
    }  # fmt: skip


# --------------------------------------------------------------------------- the CLI


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["publish", "--host", "unreachable-1", "web", "0:80"], "host port '0'"),
        (["--host", "unreachable-1", "unblock", "80/icmp"], "protocol"),
        (["publish", "--host", "h1", "--host", "h2", "web", "8080:80"], "one host at a time (h1, h2 given)"),
        (["unpublish", "--host=-oProxyCommand=x", "8080"], "bad host"),
    ],
)
def test_refused_here_before_any_connection(
    argv: list[str], needle: str, standin: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert len(err) == 1 and needle in err[0], err


def test_a_hosts_file_naming_several_hosts_is_refused(
    standin: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("h1\nh2\n")
    code, _, err = _run(capsys, "block", "--hosts", str(hosts), "8080")
    assert code == 2 and len(err) == 1 and "one host at a time" in err[0]


def test_the_cli_says_why_a_host_cannot_make_the_change(
    not_installed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "--host", "h1", "publish", "--json", "web", "8080:80")
    assert (code, out) == (HOST_FAILURE, "")
    assert err == ["portscope: h1: portscope is not installed there: install it there to change its rules "
                   "(reading needs nothing)"]  # fmt: skip
    code, out, err = _run(capsys, "unpublish", "--host", "unreachable-1", "8080")
    assert (code, out, len(err)) == (HOST_FAILURE, "", 1) and "unreachable-1: cannot connect" in err[0]


def test_host_local_is_the_ordinary_local_path(
    standin: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, _, err = _run(capsys, "publish", "--host", "local", "web", "8080:80", "--json")
    assert code == 4 and len(err) == 1 and "root" in err[0]
