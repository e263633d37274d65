"""Rule commands started before the imports (core.rules.prefetch, cli.launch) are used, not run twice."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from portscope.cli.launch import reads_live_once
from portscope.core.rules import prefetch
from portscope.core.tools import run_all


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list", "--json"], True),
        (["conflicts"], True),
        (["capture", "-o", "x.json"], True),
        (["list", "--snapshot", "x.json"], False),
        (["list", "--snap", "x.json"], False),  # argparse accepts the prefix
        (["list", "--rules", "dump.txt"], False),
        (["list", "-h"], False),
        (["tui"], False),
        (["publish", "web", "8080:80"], False),
        ([], False),
    ],
)
def test_only_one_shot_live_reads_prefetch(argv: list[str], expected: bool) -> None:
    assert reads_live_once(argv) is expected


def _popen(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_run_all_uses_started_processes_and_stops_leftovers() -> None:
    early = _popen("/bin/echo", "early")
    leftover = _popen("/bin/sleep", "30")
    results = run_all([("/bin/echo", "early"), ("/bin/echo", "late")], started={("/bin/echo", "early"): early})
    assert [r.stdout for r in results] == ["early\n", "late\n"]
    results = run_all([("/bin/echo", "x")], started={("/bin/sleep", "30"): leftover})
    assert results[0].stdout == "x\n"
    assert leftover.poll() is not None  # killed, not left running


def test_take_hands_over_once_and_only_for_the_same_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "net").mkdir()
    monkeypatch.setattr(prefetch, "first_stage_commands", lambda proc, scope="all": [("/bin/echo", proc)])
    prefetch.start(str(tmp_path))
    taken = prefetch.take(str(tmp_path))
    assert list(taken) == [("/bin/echo", str(tmp_path))]
    assert taken[("/bin/echo", str(tmp_path))].communicate()[0] == f"{tmp_path}\n"
    assert prefetch.take(str(tmp_path)) == {}
    prefetch.start(str(tmp_path))
    assert prefetch.take("/proc") == {}  # another root: discarded


def test_legacy_tables_are_planned_only_when_the_kernel_has_them(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "ip_tables_names").write_text("nat\nfilter\n")
    (tmp_path / "net" / "ip6_tables_names").write_text("")
    assert prefetch.legacy_tables(str(tmp_path / "net" / "ip_tables_names")) == ["nat", "filter"]
    assert prefetch.legacy_tables(str(tmp_path / "net" / "missing")) == []
    names = [Path(argv[0]).name for argv in prefetch.first_stage_commands(str(tmp_path))]
    assert "ip6tables-legacy-save" not in names
    if prefetch.which("iptables-legacy-save"):
        assert "iptables-legacy-save" in names


@pytest.mark.parametrize("tool", ["iptables-nft-save", "ip6tables-nft-save", "nft", "sh", "no-such-tool-here"])
def test_prefetch_finds_tools_where_read_rules_does(tool: str) -> None:
    """Same path, so `take()` hands over exactly the commands `read_rules()` would start."""
    from portscope.core.tools import which

    assert prefetch.which(tool) == which(tool)


def test_list_plans_the_nat_table_only_where_iptables_nft_can(tmp_path: Path) -> None:
    """`list` (scope "nat") starts `iptables-nft -t nat -S`; other commands start the whole save."""
    (tmp_path / "net").mkdir()
    nat = prefetch.first_stage_commands(str(tmp_path), "nat")
    whole = prefetch.first_stage_commands(str(tmp_path), "all")
    for save, tool in (("iptables-nft-save", "iptables-nft"), ("ip6tables-nft-save", "ip6tables-nft")):
        if prefetch.which(tool):
            assert (prefetch.which(tool), "-t", "nat", "-S") in nat
        if prefetch.which(save):
            assert (prefetch.which(save),) in whole
    assert prefetch.iptables_nft_command("no-such-save", "no-such-tool", "nat") is None
    nft = prefetch.which("nft")
    if nft:  # `list`'s listing thread runs `nft list chains` (and read_rules takes it there): not twice
        assert (nft, "list", "chains") in whole and (nft, "list", "chains") not in nat
