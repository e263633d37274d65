"""tui/data.py, tui/cells.py, tui/header.py: core records to rows, pure and without Textual."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from portscope.core.snapshot import read_capture
from portscope.tui.cells import Cell, Row, clip, filter_rows
from portscope.tui.data import COLUMNS, REACH_WIDTH, VIEWS, build_model, mark_rules, release
from portscope.tui.details import copy_text, detail
from portscope.tui.header import banner_lines, header_parts
from tests.tui.conftest import SAMPLE, limited_reach, non_root


def test_every_view_has_rows_with_unique_keys_and_one_cell_per_column(sample) -> None:
    model = build_model(sample)
    for view in VIEWS:
        rows = model.rows[view]
        assert rows, view
        assert len({r.key for r in rows}) == len(rows)
        assert all(len(r.cells) == len(COLUMNS[view]) for r in rows)
        assert len(model.widths[view]) == len(COLUMNS[view])


def test_rows_reference_what_core_found(sample) -> None:
    model = build_model(sample)
    assert {r.key for r in model.rows["ports"]} == {b.id for b in model.inventory.bindings}
    assert {r.key for r in model.rows["containers"]} == {c.id for c in sample.containers}
    assert [model.conflicts[r.key] for r in model.rows["conflicts"]] == model.findings
    assert {f.severity for f in model.findings} == {"error", "warning", "info"}  # the sample has every severity
    flagged = {r.key for r in model.rows["ports"] if r.cells[0].text}
    assert flagged == {bid for f in model.findings for bid in f.bindings}


def test_keys_are_stable_across_reads() -> None:
    a, b = build_model(read_capture(str(SAMPLE))), build_model(read_capture(str(SAMPLE)))
    for view in VIEWS:
        assert [r.key for r in a.rows[view]] == [r.key for r in b.rows[view]]
        assert [r.sig for r in a.rows[view]] == [r.sig for r in b.rows[view]]


def test_filter_matches_every_word_in_any_column() -> None:
    rows = [Row("a", (Cell("web"), Cell("8080/tcp")), "web 8080/tcp python3"), Row("b", (Cell("db"),), "db 5432/tcp")]
    assert [r.key for r in filter_rows(rows, "TCP")] == ["a", "b"]
    assert [r.key for r in filter_rows(rows, "tcp python")] == ["a"]
    assert filter_rows(rows, "  ") == rows


def test_cells_sort_by_value_and_measure_once() -> None:
    ports = [Cell("0.0.0.0:9000/tcp", sort=(9000,)), Cell("0.0.0.0:80/tcp", sort=(80,))]
    assert sorted(ports, key=lambda c: c.sort_key)[0].text == "0.0.0.0:80/tcp"
    assert Cell("✖").width == 1 and Cell("abc").width == 3
    assert clip("a  b\nc") == "a b c" and clip("x" * 100, 10) == "x" * 9 + "…"


def test_rules_of_a_binding_are_marked(sample) -> None:
    model = build_model(sample)
    bid = next(k for k in model.bindings if "9000" in k)
    marked = mark_rules(model.rows["rules"], model.binding_rules[bid])
    assert {r.key for r in marked if r.cells[0].text == "▶"} == set(model.binding_rules[bid])


def test_details_and_copy_texts(sample) -> None:
    model = build_model(sample)
    for view in VIEWS:
        for row in model.rows[view]:
            assert detail(model, view, row.key).plain
            assert copy_text(model, view, row.key)
    finding = model.findings[0]
    key = model.rows["conflicts"][0].key
    assert copy_text(model, "conflicts", key) == finding.fix
    assert finding.explanation in detail(model, "conflicts", key).plain
    assert detail(model, "ports", "no/such/key").plain == "(gone since the last read)"


def _reach_cell(model, key: str) -> Cell:
    row = next(r for r in model.rows["ports"] if r.key == key)
    return row.cells[[c.key for c in COLUMNS["ports"]].index("reach")]


def test_reach_is_blank_from_everywhere_else_its_summary(sample) -> None:
    plain = build_model(sample)
    assert all(_reach_cell(plain, key).text == "" for key in plain.bindings)  # the sample: all from everywhere
    model = build_model(limited_reach(sample))
    web = next(k for k in model.bindings if ":8080->" in k)
    reach = model.bindings[web].reach
    assert reach is not None and reach.restricted and reach.certain
    assert "br-6debdcee2df8" in reach.summary()
    assert _reach_cell(model, web) == Cell(clip(reach.summary(), REACH_WIDTH))
    assert "br-6debdcee2df8" in next(r.search for r in model.rows["ports"] if r.key == web)  # `/` finds it
    manual = next(k for k in model.bindings if ":2222->" in k)  # PREROUTING's own DNAT: no RETURN before it
    assert _reach_cell(model, manual).text == ""
    cache = next(k for k in model.bindings if ":40000->" in k)
    cell = _reach_cell(model, cache)
    assert cell.text.startswith("(uncertain) ") and cell.style == "yellow"


def test_binding_detail_says_where_it_is_reached_from(sample) -> None:
    model = build_model(limited_reach(sample))
    web = next(k for k in model.bindings if ":8080->" in k)
    text = detail(model, "ports", web).plain
    assert f"reached     {model.bindings[web].reach.summary()}\n" in text and "uncertain" not in text
    cache = next(k for k in model.bindings if ":40000->" in k)
    text = detail(model, "ports", cache).plain
    assert "uncertain   decided by iptables-nft ipv4 nat/PREROUTING #1: -A PREROUTING -p tcp -m tcp --dport 40000 " \
           "-m statistic" in text  # fmt: skip
    model.bindings[cache] = replace(model.bindings[cache], reach=None)  # as a proxy-only binding has
    assert "reached     - (no DNAT rule carries it)" in detail(model, "ports", cache).plain


def test_a_shadowed_dnat_says_why_it_is_no_binding(sample) -> None:
    model = build_model(sample)
    dead = next(k for k, r in model.rules.items() if r.chain == "PREROUTING" and "10.99.0.6" in r.text)
    text = detail(model, "rules", dead).plain
    assert "Bindings that pass this rule\n  (none)" in text
    assert "Not a binding: shadowed\n  every packet it would catch is taken first by PREROUTING #2" in text
    live = next(k for k, r in model.rules.items() if r.chain == "PREROUTING" and "10.99.0.5" in r.text)
    assert "Not a binding" not in detail(model, "rules", live).plain


def test_header_takes_the_time_from_the_snapshot(sample) -> None:
    assert header_parts(sample) == ["vm", "iptables-nft 43 rules", "Docker 20.10.24", "root", "2026-11-27 22:30:56 UTC"]
    assert banner_lines(sample) == []
    hidden = non_root(sample)
    assert "not root" in header_parts(hidden) and "no rules read" in header_parts(hidden)
    assert any("hidden" in line for line in banner_lines(hidden))


def test_release_takes_apart_only_what_the_model_made(sample) -> None:
    model = build_model(sample)
    sockets = list(sample.sockets)
    release(model, chunk=2)
    assert not any(model.rows.values()) and not model.bindings and not model.inventory.bindings
    assert sample.sockets == sockets  # the snapshot (maybe shared by the loader) is left whole


def test_data_never_imports_textual() -> None:
    code = (
        "import sys, portscope.tui.data, portscope.tui.details, portscope.tui.cells, portscope.tui.header;"
        " print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
