"""`portscope ephemeral --json`: schema `portscope.ephemeral/1` (docs/ephemeral.md) on the shipped capture."""

from __future__ import annotations

import json
import os

from portscope.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "examples", "sample.json")

_TOP = {
    "schema": str, "taken_at": str, "host": dict, "range": dict, "reserved": list, "used_ports": int,
    "fill": float, "listeners": int, "connections": int, "engine_chosen": list, "overlaps": list, "uses": list,
    "next_engine_ports": list, "top_processes": list, "warnings": list,
}  # fmt: skip
_USE = {"what": str, "port": int, "protocol": str, "who": str, "note": str, "binding": (str, type(None)),
        "pid": (int, type(None))}  # fmt: skip


def _doc(capsys) -> dict:
    assert main(["ephemeral", "--json", "--snapshot", SAMPLE]) == 0
    return json.loads(capsys.readouterr().out)


def test_schema_keys_and_types(capsys) -> None:
    doc = _doc(capsys)
    assert doc["schema"] == "portscope.ephemeral/1"
    assert set(doc) == set(_TOP)
    for key, kind in _TOP.items():
        assert isinstance(doc[key], kind), key
    assert set(doc["range"]) == {"first", "last", "size"}
    assert all(isinstance(v, int) for v in doc["range"].values())
    for use in [*doc["uses"], *doc["engine_chosen"], *doc["overlaps"]]:
        assert set(use) == set(_USE)
        for key, kind in _USE.items():
            assert isinstance(use[key], kind), key
    assert all(set(p) == {"process", "ports"} for p in doc["top_processes"])
    assert all(isinstance(p, int) for p in doc["next_engine_ports"])
    assert all(set(r) == {"first", "last"} for r in doc["reserved"])


def test_the_sample_s_range_picks_and_overlap(capsys) -> None:
    doc = _doc(capsys)
    assert doc["range"] == {"first": 32768, "last": 60999, "size": 28232}
    assert [u["port"] for u in doc["engine_chosen"]] == [32768, 32769]
    assert [u["port"] for u in doc["overlaps"]] == [40000]
    assert doc["next_engine_ports"][0] == 32770
    assert 0 < doc["fill"] < 1 and doc["used_ports"] == 7


def test_text_output(capsys) -> None:
    assert main(["ephemeral", "--snapshot", SAMPLE]) == 0
    out = capsys.readouterr().out
    assert "32768-60999" in out and "32770" in out and "40000/tcp" in out


def test_o_json_is_json(capsys) -> None:
    """`-o json` as docker and kubectl take it, the same document as `--json`; `-o table` the view."""
    expected = _doc(capsys)
    assert main(["ephemeral", "-o", "json", "--snapshot", SAMPLE]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert main(["ephemeral", "-o", "table", "--snapshot", SAMPLE]) == 0
    assert not capsys.readouterr().out.startswith("{")
