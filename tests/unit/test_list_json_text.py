"""`list_json_text` writes exactly what json.dumps writes for `list_json` (the fast path for pipes)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.cli.list_json_text import list_json_text
from portscope.cli.render_json import list_json
from portscope.core.inventory import build_inventory
from portscope.core.record import replace
from portscope.core.snapshot import read_capture

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.json"


def _compact(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"))


def test_sample_capture_is_byte_identical() -> None:
    snap = read_capture(str(SAMPLE))
    inv = build_inventory(snap, catches=False)
    assert len(inv.bindings) > 5
    assert list_json_text(snap, inv, inv.bindings) == _compact(list_json(snap, inv, inv.bindings))


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=60, deadline=None)
@given(name=_TEXT, cid=_TEXT, text=_TEXT, port=st.none() | st.integers(0, 65535), engine=st.booleans())
def test_any_strings_and_ports_encode_alike(name: str, cid: str, text: str, port: int | None, engine: bool) -> None:
    snap = read_capture(str(SAMPLE))
    inv = build_inventory(snap, catches=False)
    first = inv.bindings[0]
    rules = [replace(r, text=r.text + text) for r in first.rules]
    odd = replace(
        first, container_id=cid, container_name=name, container_port=port, reported_by_engine=engine, rules=rules
    )
    bindings = [odd, *inv.bindings[1:]]
    assert list_json_text(snap, inv, bindings) == _compact(list_json(snap, inv, bindings))
