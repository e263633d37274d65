"""Reference dumps of real engines (../shared/natlayouts, not part of this repo): each yields its `# expect:` lines.

Skipped where the reference folder is absent (it is reference material, not a fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYOUTS = os.path.normpath(os.path.join(ROOT, "..", "shared", "natlayouts"))
FILES = sorted(f for f in os.listdir(LAYOUTS) if not f.endswith(".md")) if os.path.isdir(LAYOUTS) else []


def expected(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        lines = [line.split(":", 1)[1].strip() for line in f if line.startswith("# expect:")]
    return set() if lines == ["none"] else set(lines)


def as_expect_line(b: dict) -> str:
    fam = "v4" if b["family"] == "ipv4" else "v6"
    host = "*" if b["host_ip"] in ("0.0.0.0", "::") else b["host_ip"]
    target = f"[{b['target_ip']}]" if ":" in b["target_ip"] else b["target_ip"]
    return f"{fam} {b['protocol']} {host}:{b['host_port']} -> {target}:{b['target_port']}"


@pytest.mark.skipif(not FILES, reason="../shared/natlayouts is not present")
@pytest.mark.parametrize("name", FILES)
def test_reference_dump_publishes_what_it_expects(name: str) -> None:
    path = os.path.join(LAYOUTS, name)
    result = subprocess.run(
        [sys.executable, "-m", "portscope", "list", "--json", "--rules", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {as_expect_line(b) for b in doc["bindings"]} == expected(path)
