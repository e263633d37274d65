"""The python-iptables (libiptc) fallback for legacy tables gives what `iptables-legacy-save` gives."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.conftest import need_root_tools
from tests.sandbox.netns import netns

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "iptables", "legacy-v4.save")

#: Run inside the namespace: read the rules both ways and summarise what each path yields.
PROBE = """
import json, shutil, subprocess
import portscope.core.rules.live as live
from portscope.core.resolve import resolve
from portscope.core.rules.iptables_text import parse_iptables_text
from portscope.core.rules.libiptc import legacy_save_text

def summary(tables):
    rules = [(r.table, r.chain, r.position, r.verdict, r.jump, repr(r.matches), repr(r.nat), r.comment)
             for t in tables for c in t.chains.values() for r in c.rules]
    bindings = sorted(b.id for b in resolve(tables).bindings)
    return {"rules": rules, "bindings": bindings}

saved = subprocess.run(["iptables-legacy-save"], capture_output=True, text=True, check=True).stdout
via_tool = parse_iptables_text(saved, family="ipv4")
via_lib = parse_iptables_text(legacy_save_text("ipv4", ["nat"]), family="ipv4")
no_legacy_tools = lambda name: None if "legacy" in name else shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
read = live.read_rules(tools=live.RuleTools(which=no_legacy_tools))
legacy = [b for b in read.backends if b.backend == "iptables-legacy" and b.family == "ipv4"]
print(json.dumps({"tool": summary([t for t in via_tool if t.name == "nat"]), "lib": summary(via_lib),
                  "status": [b.read for b in legacy], "origins": [s.origin for s in read.sources],
                  "live": summary([t for t in read.tables if t.backend == "iptables-legacy"])}))
"""


def test_libiptc_fallback_matches_iptables_legacy_save() -> None:
    need_root_tools("iptables-legacy-restore", "iptables-legacy-save", "nsenter", "ip")
    with netns("pslib") as ns, open(FIXTURE, encoding="utf-8") as f:
        ns.run(["iptables-legacy-restore"], input=f.read())
        result = ns.run([sys.executable, "-c", PROBE], cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["lib"]["rules"] == doc["tool"]["rules"]
    assert doc["lib"]["bindings"] == doc["tool"]["bindings"]
    assert "ipv4/tcp/0.0.0.0:8080->172.17.0.2:80" in doc["lib"]["bindings"]
    assert doc["status"] == [True] and "python-iptables" in doc["origins"]
    assert doc["live"]["bindings"] == doc["tool"]["bindings"]
