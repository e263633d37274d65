"""`list` fits the terminal without splitting an address, marks each row with its worst finding, and
`list --json` carries the finding kinds per binding (issue 17)."""

from __future__ import annotations

import argparse
import io
import json
import os

import pytest
from rich.cells import cell_len
from rich.console import Console

from portscope.cli.list_findings import listing_of
from portscope.cli.main import main
from portscope.cli.render_table import _host, _target, print_bindings
from portscope.cli.sources import load_snapshot
from portscope.core.binding_findings import worst

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "examples", "sample.json")


def _listing():
    args = argparse.Namespace(snapshot=SAMPLE, rules=None)
    snap = load_snapshot(args)
    return snap, *listing_of(snap)


def _table(width: int, wide: bool = False) -> list[str]:
    _, inv, found = _listing()
    out = io.StringIO()
    marks = {bid: worst(fs) for bid, fs in found.items()}
    print_bindings(inv.bindings, Console(file=out, width=width, color_system=None), marks, wide=wide)  # type: ignore[arg-type]
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_no_address_is_split_and_the_table_fits(width: int) -> None:
    _, inv, _ = _listing()
    lines = _table(width)
    assert all(cell_len(line.rstrip()) <= width for line in lines)
    for b in inv.bindings:
        assert any(_host(b) in line for line in lines), _host(b)  # whole, on one line
        assert any(_target(b) in line for line in lines), _target(b)
    assert not any(line.startswith("│   │ cp") or "│ cp " in line or "│ p " in line for line in lines)


def test_family_goes_first_at_80_columns_and_stays_at_120() -> None:
    assert "FAMILY" not in _table(80)[2] and "HOST" in _table(80)[2]
    assert "FAMILY" in _table(120)[2]
    wide = _table(40, wide=True)
    assert all(h in wide[2] for h in ("HOST", "FAMILY", "TARGET", "CONTAINER", "OWNER", "CARRIED BY"))


def test_rows_carry_the_worst_finding_mark() -> None:
    lines = _table(120)
    row = {h: next(line for line in lines if f" {h} " in line) for h in ("0.0.0.0:2222/tcp", "0.0.0.0:40000/tcp")}
    assert row["0.0.0.0:2222/tcp"].startswith("│ ✖ ")  # shadowed-listener: an error
    assert row["0.0.0.0:40000/tcp"].startswith("│ ▲ ")  # ephemeral-overlap: a warning
    assert next(line for line in lines if " 0.0.0.0:8080/tcp " in line).startswith("│   │")


def test_cli_list_at_80_columns_keeps_addresses_whole(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list", "--snapshot", SAMPLE]) == 0
    out = capsys.readouterr().out
    assert "0.0.0.0:32768/tcp" in out and "127.0.0.1:9000/tcp" in out


def test_the_table_marks_findings_by_default_and_not_with_no_findings(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["list", "--snapshot", SAMPLE]) == 0
    marked = capsys.readouterr().out
    assert main(["list", "--no-findings", "--snapshot", SAMPLE]) == 0
    plain = capsys.readouterr().out
    assert "│ ✖ │ 0.0.0.0:2222/tcp" in marked and "│ ▲ │ 0.0.0.0:40000/tcp" in marked
    assert "✖" not in plain and "▲" not in plain and "│ 0.0.0.0:2222/tcp" in plain


def test_list_json_carries_finding_kinds_per_binding(capsys) -> None:
    assert main(["list", "--json", "--findings", "--snapshot", SAMPLE]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "portscope.list/1"
    assert all(isinstance(b["findings"], list) for b in doc["bindings"])
    by_port = {b["host_port"]: b["findings"] for b in doc["bindings"]}
    assert by_port[2222] == ["shadowed-listener"]
    assert by_port[40000] == ["ephemeral-overlap"]
    assert by_port[8080] == []


def test_without_findings_list_reads_only_what_bindings_need(capsys) -> None:
    """`findings` is null (not checked) unless asked for: the diagnosis reads every table."""
    assert main(["list", "--json", "--snapshot", SAMPLE]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bindings"] and all(b["findings"] is None for b in doc["bindings"])


def test_o_wide_and_o_json(monkeypatch, capsys) -> None:
    """`-o wide` shows every column at 80 columns, as `--wide` does; `-o json` is the JSON of `--json`."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list", "--snapshot", SAMPLE]) == 0
    narrow = capsys.readouterr().out
    assert main(["list", "-o", "wide", "--snapshot", SAMPLE]) == 0
    wide = capsys.readouterr().out
    assert "FAMILY" not in narrow and "FAMILY" in wide
    assert main(["list", "-o", "json", "--snapshot", SAMPLE]) == 0
    by_o = json.loads(capsys.readouterr().out)
    assert main(["list", "--json", "--snapshot", SAMPLE]) == 0
    assert by_o == json.loads(capsys.readouterr().out) and by_o["schema"] == "portscope.list/1"


def test_conflicts_o_json(capsys) -> None:
    assert main(["conflicts", "-o", "json", "--snapshot", SAMPLE]) == 1  # the sample has errors
    by_o = json.loads(capsys.readouterr().out)
    assert main(["conflicts", "--json", "--snapshot", SAMPLE]) == 1
    assert by_o == json.loads(capsys.readouterr().out) and by_o["schema"] == "portscope.conflicts/1"
