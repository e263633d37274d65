"""Captures, rule dumps and a non-root run, against the real sandboxed engine.

- `capture` then `list --snapshot` gives exactly the live list;
- `list --rules` on the engine's own `iptables-save` output gives the same DNAT bindings as the kernel;
- without root, one line says what was not read and how to fix it, and the rest is still shown.
"""

from __future__ import annotations

import json
import pwd
from collections.abc import Iterator

import pytest

from tests.sandbox.as_user import run_cli_as
from tests.sandbox.engine import IMAGE, Engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def web(engine: Engine) -> Iterator[Engine]:
    """One published container for this module (its own name and ports)."""
    name = "ps-cap-web"
    engine.run_container(name, "-p", "18080:80", "-p", "18053:53/udp", IMAGE, "httpd", "-f", "-p", "80")
    try:
        yield engine
    finally:
        engine.docker("rm", "-f", name, check=False)


def list_json(engine: Engine, *args: str) -> dict:
    result = engine.run_portscope("list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def ids(doc: dict) -> set[tuple]:
    return {(b["id"], b["owner"], tuple(b["carriers"]), (b["container"] or {}).get("name")) for b in doc["bindings"]}


def test_capture_then_snapshot_lists_the_same(web: Engine, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("capture") / "host.json"
    result = web.run_portscope("capture", "-o", str(path))
    assert result.returncode == 0, result.stderr
    live = list_json(web)
    captured = list_json(web, "--snapshot", str(path))
    assert ids(captured) == ids(live)
    assert any(b["host_port"] == 18080 and b["container"]["name"] == "ps-cap-web" for b in captured["bindings"])
    data = json.loads(path.read_text())
    assert data["schema"] == "portscope.capture/1"
    assert {s["format"] for s in data["sources"]} >= {"iptables-save"}
    assert any(c["name"] == "ps-cap-web" for c in data["containers"])
    assert data["host"]["ephemeral_range"]["first"] > 0


def test_rules_dump_gives_the_kernels_dnat_bindings(web: Engine, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("dumps")
    v4 = folder / "v4.save"
    v4.write_text(web.iptables_save(4))
    s_dump = folder / "nat.S"
    s_dump.write_text(web.iptables("-t", "nat", "-S").stdout)
    live = {b["id"] for b in list_json(web)["bindings"] if "dnat" in b["carriers"]}
    for dump in (v4, s_dump):
        from_dump = {b["id"] for b in list_json(web, "--rules", str(dump))["bindings"]}
        assert from_dump == live, dump.name
    assert any(i.startswith("ipv4/tcp/0.0.0.0:18080->") for i in live)


def _run_as_nobody(engine: Engine, argv: list[str]) -> tuple[int, str, str]:
    """Run `portscope ARGV` in a child that entered the engine's namespace and dropped to nobody."""
    nobody = pwd.getpwnam("nobody")
    return run_cli_as(engine.ns.path, nobody.pw_uid, nobody.pw_gid, {"DOCKER_HOST": engine.docker_host}, argv)


def test_without_root_one_line_then_what_can_be_read(web: Engine) -> None:
    code, stdout, stderr = _run_as_nobody(web, ["list", "--json"])
    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "not root" in lines[0] and "sudo" in lines[0] and "iptables" in lines[0]
    doc = json.loads(stdout)
    assert doc["host"]["is_root"] is False
    assert not any(b["read"] for b in doc["backends"] if b["backend"] == f"iptables-{web.setup.backend}")
    assert doc["engine"]["reachable"] is False and "permission" in doc["engine"]["reason"].lower()
    code, stdout, _ = _run_as_nobody(web, ["capture", "-o", "-"])
    assert code == 0
    capture = json.loads(stdout)
    assert any(s["port"] == 18080 for s in capture["sockets"]), "listeners stay readable without root"
