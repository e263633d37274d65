"""`list`, `conflicts` and `capture` over a fleet: options before or after the command, the fleet document, a fleet
capture opened offline. Hosts are this one, through an ssh stand-in that runs the real collector here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from portscope.cli.fleet_cmd import tag_host
from portscope.cli.main import _fleet_options_after_command, build_parser, main

STANDIN = Path(__file__).with_name("fleet_ssh_standin.py")


@pytest.fixture(autouse=True)
def standin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSCOPE_SSH_COMMAND", f"{sys.executable} {STANDIN}")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--host", "h1", "list", "--json"], ["list", "--host", "h1", "--json"]),
        (
            ["--host=h1", "--sudo", "--timeout", "5", "conflicts"],
            ["conflicts", "--host=h1", "--sudo", "--timeout", "5"],
        ),
        (["--host", "h1"], ["tui", "--host", "h1"]),
        (["--host", "h1", "--snapshot", "f.json"], ["tui", "--host", "h1", "--snapshot", "f.json"]),
        (["list", "--host", "h1"], ["list", "--host", "h1"]),
    ],
)
def test_fleet_options_before_the_command_go_after_it(argv: list[str], expected: list[str]) -> None:
    assert _fleet_options_after_command(argv) == expected


def test_hosts_before_and_after_the_command_add_up() -> None:
    args = build_parser().parse_args(_fleet_options_after_command(["--host", "h1", "list", "--host", "h2", "--json"]))
    assert args.host == ["h1", "h2"] and args.timeout == 20.0 and not args.sudo


def test_list_json_over_a_fleet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# this host, through the stand-in\nh1\nunreachable-1  # down\n")
    code, out, err = _run(capsys, "list", "--json", "--hosts", str(hosts), "--host", "local")
    assert code == 0
    fleet = json.loads(out)["fleet"]
    # --host values first, then the file's lines
    assert [(e["host"], e["reachable"]) for e in fleet] == [("local", True), ("h1", True), ("unreachable-1", False)]
    assert set(fleet[0]) == {"host", "reachable", "error", "read_seconds", "result"}
    assert fleet[2]["result"] is None and fleet[2]["error"].startswith("unreachable-1: cannot connect: ")
    assert fleet[2]["error"] in err
    last, first = fleet[0]["result"], fleet[1]["result"]
    assert first["schema"] == "portscope.list/1"
    assert all(b["host"] == "h1" for b in first["bindings"])
    del first["taken_at"], last["taken_at"]  # the only field that may differ: the second of each read
    assert tag_host(first, "bindings", "local") == last


def test_conflicts_json_tags_each_finding_with_its_host(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--host", "h1", "conflicts", "--json")
    (entry,) = json.loads(out)["fleet"]
    assert entry["result"]["schema"] == "portscope.conflicts/1"
    assert code == (1 if entry["result"]["counts"]["error"] else 0)
    doc = {"schema": "x", "findings": [{"kind": "a"}, {"kind": "b"}]}
    assert tag_host(doc, "findings", "h2") == {
        "schema": "x",
        "findings": [{"kind": "a", "host": "h2"}, {"kind": "b", "host": "h2"}],
    }
    assert doc["findings"][0] == {"kind": "a"}  # the host's own document is left as it was


def test_no_host_read_is_an_error_exit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "list", "--json", "--host", "unreachable-1", "--host", "unreachable-2")
    assert code == 1
    assert [e["reachable"] for e in json.loads(out)["fleet"]] == [False, False]
    assert len(err.strip().splitlines()) == 2


def test_a_fleet_capture_opens_offline(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    code, _, err = _run(capsys, "capture", "-o", str(path), "--host", "h1", "--host", "unreachable-1")
    assert code == 0 and "wrote" in err
    saved = json.loads(path.read_text())
    assert [(e["host"], e["reachable"]) for e in saved] == [("h1", True), ("unreachable-1", False)]
    assert saved[0]["capture"]["schema"] == "portscope.capture/1" and saved[1]["capture"] is None
    code, out, _ = _run(capsys, "list", "--json", "--snapshot", str(path))
    fleet = json.loads(out)["fleet"]
    assert code == 0
    assert [(e["host"], e["reachable"], e["error"]) for e in fleet] == [
        (e["host"], e["reachable"], e["error"]) for e in saved
    ]
    assert fleet[0]["result"]["taken_at"] == saved[0]["capture"]["taken_at"]


def test_the_tui_on_a_fleet_capture_reads_it_once_to_open_then_again_on_each_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portscope.cli import fleet_cmd

    path = tmp_path / "fleet.json"
    assert _run(capsys, "capture", "-o", str(path), "--host", "h1", "--host", "unreachable-1")[0] == 0
    loads: list[str] = []
    real = fleet_cmd.read_fleet_capture
    monkeypatch.setattr(fleet_cmd, "read_fleet_capture", lambda name: loads.append(name) or real(name))
    opened: dict = {}
    monkeypatch.setattr("portscope.tui.fleet_app.run_fleet_app", lambda reader, hosts, **kw: opened.update(
        reader=reader, hosts=hosts, source=kw["source"]) or 0)  # fmt: skip
    assert _run(capsys, "--snapshot", str(path))[0] == 0
    assert (opened["hosts"], opened["source"], loads) == (["h1", "unreachable-1"], str(path), [str(path)])
    assert [r.host for r in opened["reader"](None)] == ["h1", "unreachable-1"]
    assert len(loads) == 1  # the first read shows what was checked before the screen opened
    assert [r.host for r in opened["reader"]({"h1"})] == ["h1"]
    assert len(loads) == 2  # a later read (`r`) reads the file again


def test_hosts_with_a_snapshot_or_dumps_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "list", "--host", "h1", "--rules", str(tmp_path / "x"))
    assert code == 2 and "leave out --snapshot and --rules" in err


def test_the_tui_over_a_fleet_refuses_bad_options_before_it_opens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "--host", "h1", "--snapshot", str(tmp_path / "x.json"))
    assert code == 2 and "leave out --snapshot and --rules" in err and len(err.splitlines()) == 1
    damaged = tmp_path / "fleet.json"
    damaged.write_text('[{"host": "h1", "capture": {"schema": "nope"}}]')
    code, _, err = _run(capsys, "--snapshot", str(damaged))
    assert code == 2 and "entry 1 is not a portscope capture" in err and len(err.splitlines()) == 1


def test_inventory_without_ansible_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("portscope.core.fleet.destinations.which", lambda name: None)
    code, _, err = _run(capsys, "list", "--inventory", "hosts.ini")
    assert code == 2 and "ansible-inventory" in err and len(err.splitlines()) == 1
