"""`portscope --version` and `portscope version [--json]` (cli.version_cmd)."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading
from importlib.metadata import version
from pathlib import Path

import pytest

from portscope.cli import version_cmd
from portscope.cli.main import main
from portscope.core.tools import ToolResult


def test_dash_dash_version_prints_the_package_metadata_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"portscope {version('portscope')}\n"


def test_package_version_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert version_cmd.package_version() == "unknown"


def _chains(stdout: str, returncode: int = 0, stderr: str = "") -> ToolResult:
    return ToolResult(("nft", "list", "chains"), returncode, stdout, stderr)


_LISTING = """table ip nat {
	chain PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
	}
	chain DOCKER {
	}
}
table ip6 filter {
	chain FORWARD {
		type filter hook forward priority filter; policy accept;
	}
}
table inet netavark {
	chain INPUT {
		type filter hook input priority filter; policy accept;
	}
}
"""


def test_backends_in_use(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "ip_tables_names").write_text("nat\nfilter\n")
    got = version_cmd.backends_in_use(str(tmp_path), _chains(_LISTING))
    assert got == [
        {"backend": "iptables-legacy", "tables": ["ip nat", "ip filter"]},
        {"backend": "iptables-nft", "tables": ["ip nat", "ip6 filter"]},
        {"backend": "nftables", "tables": ["inet netavark"]},
    ]


def test_backends_unknown_without_nft_or_permission(tmp_path: Path) -> None:
    denied = _chains("", 1, "Error: Operation not permitted")
    got = version_cmd.backends_in_use(str(tmp_path), denied)
    assert got[0] == {"backend": "iptables-legacy", "tables": []}  # no /proc/net file: no legacy tables
    assert [b["tables"] for b in got[1:]] == [None, None]
    assert all("run portscope as root" in b["reason"] for b in got[1:])
    assert all(b["tables"] is None for b in version_cmd.backends_in_use(str(tmp_path), None)[1:])


def test_engine_not_reachable_without_a_socket(tmp_path: Path) -> None:
    got = version_cmd.engine_version(f"unix://{tmp_path}/docker.sock")
    assert got["reachable"] is False
    assert "no socket" in got["reason"]


class _Engine(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {"Version": "27.5.1", "ApiVersion": "1.47", "MinAPIVersion": "1.24", "Components": []}
        ).encode()
        self.send_response(200 if self.path == "/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # BaseHTTPRequestHandler wants a (host, port) client address
        conn, _ = super().get_request()
        return conn, ("local", 0)


def test_engine_version_from_one_request(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with _UnixHTTP(str(path), _Engine) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            got = version_cmd.engine_version(f"unix://{path}")
        finally:
            server.shutdown()
    assert got == {
        "reachable": True,
        "endpoint": f"unix://{path}",
        "name": "Docker Engine",
        "version": "27.5.1",
        "api_version": "1.47",
        "min_api_version": "1.24",
    }


def test_version_json_schema_and_text(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(
        version_cmd,
        "tool_versions",
        lambda: {"iptables": "iptables v1.8.9 (nf_tables)", "nft": None, "_chains": None},
    )
    assert main(["version", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "portscope.version/1"
    assert doc["portscope"] == version("portscope")
    assert set(doc) == {"schema", "portscope", "python", "engine", "tools", "backends"}
    assert doc["engine"]["reachable"] is False
    assert doc["tools"] == {"iptables": "iptables v1.8.9 (nf_tables)", "nft": None}
    assert [b["backend"] for b in doc["backends"]] == ["iptables-legacy", "iptables-nft", "nftables"]

    assert main(["version"]) == 0
    text = capsys.readouterr().out
    assert f"portscope:       {version('portscope')}\n" in text
    assert "engine:          not reachable (no socket at " in text
    assert "nft:             not found\n" in text


@pytest.mark.skipif(not os.path.exists("/proc/net"), reason="needs Linux /proc")
def test_version_runs_on_this_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("portscope:")
    assert "python:" in out and "engine:" in out


def test_version_o_json_is_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(version_cmd, "tool_versions", lambda: {"iptables": None, "nft": None, "_chains": None})
    assert main(["version", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "portscope.version/1"
    assert main(["version", "-o", "table"]) == 0
    assert capsys.readouterr().out.startswith("portscope:")
