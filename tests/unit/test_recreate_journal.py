"""The swap record: written and read back whole, and anything else in its place refused in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portscope.core.publish.trusted import StateError
from portscope.core.recreate import journal
from portscope.core.recreate.journal import SwapRecord

RECORD = SwapRecord(name="web", aside="web-portscope-old-0123456789ab", old_id="0" * 64, was_running=True,
                    health=False, timeout=30.0)  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> str:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return str(path)


def test_written_records_read_back_and_clear(folder: str) -> None:
    assert journal.read(folder) is None
    journal.write(folder, RECORD)
    assert journal.read(folder) == RECORD
    later = RECORD.at("created", "a" * 64)
    journal.write(folder, later)
    assert journal.read(folder) == later
    assert oct(os.stat(os.path.join(folder, journal.NAME)).st_mode & 0o777) == "0o600"
    journal.clear(folder)
    assert journal.read(folder) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "aside", "old_id", "was_running", "health", "timeout", "step",
                                        "new_id"]), json_values) | json_values)  # fmt: skip
def test_anything_else_is_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory, doc: object) -> None:
    folder = tmp_path_factory.mktemp("state")
    folder.chmod(0o700)
    (folder / journal.NAME).write_text(json.dumps(doc))
    (folder / journal.NAME).chmod(0o600)
    try:
        record = journal.read(str(folder))
    except StateError as exc:
        assert "\n" not in str(exc) and journal.NAME in str(exc)
    else:
        assert isinstance(record, SwapRecord)
