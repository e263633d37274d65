"""`build_model(snap, previous)` reuses the previous model's rows where their inputs did not change, and must
give exactly the rows a model built from scratch gives: containers, listeners and rules changed under it
(a rule inserted before others in its chain, a rule in a chain a changed chain jumps to, a rule deleted)."""

from __future__ import annotations

from dataclasses import replace

from portscope.core.model import Snapshot, Socket
from portscope.core.snapshot import read_capture_json, snapshot_from_dict
from portscope.tui.data import VIEWS, Model, build_model
from tests.tui.conftest import SAMPLE

DNAT = "-A DOCKER -p tcp -m tcp --dport {port} -j DNAT --to-destination 172.17.0.{host}:80"


def nat_edited(*edits: tuple[str, str]) -> Snapshot:
    """The sample with its ipv4 nat rules edited: each (old, new) replaces a text found once in the nat dump."""
    data = read_capture_json(str(SAMPLE))
    source = data["sources"][0]
    head, nat = source["text"].split("*nat", 1)
    for old, new in edits:
        assert nat.count(old) == 1, old
        nat = nat.replace(old, new)
    source["text"] = f"{head}*nat{nat}"
    return snapshot_from_dict(data)


def assert_as_fresh(model: Model, snap: Snapshot) -> None:
    """Every view's rows, widths and the bindings' rules equal those of a model built without `previous`."""
    fresh = build_model(snap)
    for view in VIEWS:
        assert model.rows[view] == fresh.rows[view], view
        assert model.widths[view] == fresh.widths[view], view
    assert model.binding_rules == fresh.binding_rules
    assert model.bindings.keys() == fresh.bindings.keys()
    assert model.conflicts == fresh.conflicts


def test_the_same_snapshot_reuses_every_row(sample) -> None:
    first = build_model(sample)
    again = build_model(sample, first)
    assert_as_fresh(again, sample)
    for view in ("ports", "conflicts", "rules"):
        assert all(a is b for a, b in zip(again.rows[view], first.rows[view], strict=True)), view


def test_a_container_gone_rebuilds_only_its_rows(sample) -> None:
    first = build_model(sample)
    gone = next(c for c in sample.containers if c.name == "cache")
    snap = replace(sample, containers=[c for c in sample.containers if c is not gone])
    model = build_model(snap, first)
    assert_as_fresh(model, snap)
    old = {r.key: r for r in first.rows["ports"]}
    rebuilt = {r.key for r in model.rows["ports"] if old.get(r.key) is not r}
    assert rebuilt and all(first.bindings[k].container_id == gone.id for k in rebuilt if k in first.bindings)
    assert any(r is old.get(r.key) for r in model.rows["ports"])


def test_a_listener_that_shadows_a_published_port_adds_a_conflict(sample) -> None:
    first = build_model(sample)
    listener = Socket(family="ipv4", protocol="tcp", address="0.0.0.0", port=8080, pid=4242, process="nc")
    snap = replace(sample, sockets=[*sample.sockets, listener])
    model = build_model(snap, first)
    assert_as_fresh(model, snap)
    assert len(model.findings) > len(first.findings)


def test_a_rule_inserted_before_others_in_its_chain() -> None:
    first_line = "-A DOCKER -d 127.0.0.1/32 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.30.0.2:80"
    before = nat_edited()
    after = nat_edited((first_line, f"{DNAT.format(port=31001, host=250)}\n{first_line}"))
    first = build_model(before)
    model = build_model(after, first)
    assert_as_fresh(model, after)
    assert any("31001" in r.key for r in model.rows["ports"])
    moved = [r for r in model.rows["rules"] if "/DOCKER/" in r.key and "31001" not in r.key]
    assert moved and all(r.order[2] >= 2 for r in moved)  # every rule below it moved one down
    back = build_model(before, model)  # and deleted again
    assert_as_fresh(back, before)


def test_a_rule_in_a_chain_that_a_changed_chain_jumps_to() -> None:
    """PSTJ is declared; then PREROUTING gets a jump to it and PSTJ a DNAT; then both go again."""
    declared = (":DOCKER - [0:0]\n", ":DOCKER - [0:0]\n:PSTJ - [0:0]\n")
    jump = "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
    dnat = DNAT.format(port=31002, host=251).replace("DOCKER", "PSTJ")
    empty = nat_edited(declared)
    jumped = nat_edited(declared, (jump, f"-A PREROUTING -p tcp -m tcp --dport 31002 -j PSTJ\n{jump}"),
                        ("COMMIT", f"{dnat}\nCOMMIT"))  # fmt: skip
    first = build_model(empty)
    model = build_model(jumped, first)
    assert_as_fresh(model, jumped)
    assert any("31002" in r.key for r in model.rows["ports"])
    again = build_model(empty, model)
    assert_as_fresh(again, empty)
