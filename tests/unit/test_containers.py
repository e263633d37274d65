"""Containers: inspect JSON captured from a real engine, a live engine, and engines that are absent or broken.

The fixtures under tests/fixtures/docker/ are written by tests/fixtures/make_docker_fixtures.py from a
Docker 20.10 engine running containers made with:
    web   -p 8080:80 -p 127.0.0.1:9000:80 -p 5353:53/udp
    eph   -P --expose 80
    blank -p 80
    none  (no ports)
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portscope.core.containers import container_from_inspect, engine_name_version, parse_port_key, read_containers
from portscope.core.model import ContainerNetwork, PortMapping

FIXTURES = Path(__file__).parents[1] / "fixtures" / "docker"
REPO = Path(__file__).parents[2]
IMAGE = "portscope-busybox:test"


def _inspect(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"inspect-{name}.json").read_text())


def _bridge(data: dict[str, Any]) -> ContainerNetwork:
    return ContainerNetwork("bridge", data["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], None)


# --- container_from_inspect on captured engine output --------------------------------------------------


def test_web_explicit_bindings() -> None:
    data = _inspect("web")
    c = container_from_inspect(data)
    assert (c.id, c.name, c.image, c.state, c.network_mode) == (data["Id"], "web", IMAGE, "running", "default")
    assert c.networks == (_bridge(data),)
    assert c.networks[0].ipv4.startswith("172.17.")
    assert not c.publish_all
    assert c.requested == (
        PortMapping(53, "udp", "", "5353"),
        PortMapping(80, "tcp", "", "8080"),
        PortMapping(80, "tcp", "127.0.0.1", "9000"),
    )
    assert c.in_force == (
        PortMapping(53, "udp", "0.0.0.0", "5353"),
        PortMapping(53, "udp", "::", "5353"),
        PortMapping(80, "tcp", "0.0.0.0", "8080"),
        PortMapping(80, "tcp", "127.0.0.1", "9000"),
        PortMapping(80, "tcp", "::", "8080"),
    )


def test_eph_publish_all_requests_every_exposed_port() -> None:
    data = _inspect("eph")
    assert data["HostConfig"]["PortBindings"] == {}  # -P leaves PortBindings empty...
    c = container_from_inspect(data)
    assert c.publish_all
    assert c.requested == (PortMapping(80, "tcp", "", ""),)  # ...so the exposed port is the request
    port = data["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    assert c.in_force == (PortMapping(80, "tcp", "0.0.0.0", port), PortMapping(80, "tcp", "::", port))


def test_blank_host_port_is_left_to_docker() -> None:
    c = container_from_inspect(_inspect("blank"))
    assert not c.publish_all
    assert c.requested == (PortMapping(80, "tcp", "", ""),)
    assert {m.host_ip for m in c.in_force} == {"0.0.0.0", "::"}
    assert all(m.host_port.isdigit() and int(m.host_port) > 0 for m in c.in_force)


def test_container_without_ports() -> None:
    data = _inspect("none")
    c = container_from_inspect(data)
    assert (c.name, c.state, c.requested, c.in_force) == ("none", "running", (), ())
    assert c.networks == (_bridge(data),)


def test_exposed_but_unpublished_port_is_not_in_force() -> None:
    # Docker reports an exposed, unpublished port as {"443/tcp": null}.
    data = copy.deepcopy(_inspect("eph"))
    data["NetworkSettings"]["Ports"]["443/tcp"] = None
    assert [m.container_port for m in container_from_inspect(data).in_force] == [80, 80]


def test_publish_all_keeps_explicit_bindings() -> None:
    data = copy.deepcopy(_inspect("web"))
    data["HostConfig"]["PublishAllPorts"] = True
    c = container_from_inspect(data)
    assert c.publish_all
    assert c.requested == container_from_inspect(_inspect("web")).requested


def test_stopped_container_has_no_network_addresses() -> None:
    # What a stopped container looks like: empty address strings and no port map.
    data = copy.deepcopy(_inspect("web"))
    data["State"]["Status"] = "exited"
    data["NetworkSettings"]["Ports"] = {}
    data["NetworkSettings"]["Networks"]["bridge"].update(IPAddress="", GlobalIPv6Address="")
    c = container_from_inspect(data)
    assert c.state == "exited"
    assert c.networks == (ContainerNetwork("bridge", None, None),)
    assert c.in_force == ()
    assert len(c.requested) == 3


def test_parse_port_key() -> None:
    assert parse_port_key("80/tcp") == (80, "tcp")
    assert parse_port_key("53/udp") == (53, "udp")
    assert parse_port_key("9/sctp") == (9, "sctp")
    assert parse_port_key("8080") == (8080, "tcp")
    for bad in ("", "/tcp", "http/tcp", "0/tcp", "65536/tcp", "-1/udp"):
        assert parse_port_key(bad) is None, bad


def test_engine_name_and_version_from_docker() -> None:
    data = json.loads((FIXTURES / "version.json").read_text())
    assert engine_name_version(data) == ("Docker Engine", data["Version"])
    assert data["Version"].startswith("20.10.")


def test_engine_name_and_version_from_podman() -> None:
    # Podman's Docker-compatible /version lists itself as a component named "Podman Engine".
    data = {"Version": "4.9.3", "Components": [{"Name": "Podman Engine", "Version": "4.9.3"}]}
    assert engine_name_version(data) == ("Podman Engine", "4.9.3")


# --- absent, refused, hung and forbidden engines --------------------------------------------------------


def _run_fresh(code: str, env: dict[str, str], user: int | None = None) -> list[str]:
    """Run `code` in a fresh interpreter from the repo root; return its stdout lines."""
    prelude = "import sys, os\nfrom core.containers import read_containers\n"
    if user is not None:
        prelude += f"os.setgroups([]); os.setgid({user}); os.setuid({user})\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.splitlines()


_REPORT = (
    "info, cs = read_containers({arg})\nprint(info.reachable, cs)\nprint(info.reason)\nprint('docker' in sys.modules)\n"
)


def test_missing_default_socket_does_not_import_the_sdk() -> None:
    if os.path.exists("/var/run/docker.sock"):
        pytest.skip("this host has a Docker socket at the default path")
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    assert _run_fresh(_REPORT.format(arg=""), env) == [
        "False []",
        "no Docker socket at /var/run/docker.sock (set DOCKER_HOST to use another engine)",
        "False",
    ]


def test_missing_socket_from_docker_host(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "docker.sock"
    env = {**os.environ, "DOCKER_HOST": f"unix://{path}"}
    reachable, reason, imported = _run_fresh(_REPORT.format(arg=""), env)
    assert reachable == "False []"
    assert reason.startswith(f"no Docker socket at {path}")
    assert imported == "False"


def test_missing_socket_in_process(tmp_path: Path) -> None:
    info, containers = read_containers(f"unix://{tmp_path}/docker.sock")
    assert not info.reachable and containers == []
    assert f"{tmp_path}/docker.sock" in info.reason


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory any user can enter (pytest's tmp_path is private to root)."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        yield Path(d)


def test_permission_denied_says_what_to_do(world_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    path = world_dir / "docker.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        os.chmod(path, 0o660)  # root:root, like a docker.sock the user's groups do not cover
        reachable, reason, imported = _run_fresh(_REPORT.format(arg=f"'unix://{path}'"), dict(os.environ), user=65534)
    assert reachable == "False []"
    assert reason == f"permission denied on {path}: run as root or join the docker group"
    assert imported == "False"


def test_hung_engine_times_out(tmp_path: Path) -> None:
    path = tmp_path / "hung.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(8)  # accepts connections into the backlog, never answers
        info, containers = read_containers(f"unix://{path}", timeout=0.3)
    assert not info.reachable and containers == []
    assert info.reason == f"the engine at unix://{path} did not answer within 0.3 s"


def test_socket_file_without_engine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # the file exists but nothing listens: a stale socket left by a dead daemon
        info, containers = read_containers(f"unix://{path}", timeout=2)
    assert not info.reachable and containers == []
    assert info.reason == f"nothing is accepting connections at unix://{path}: is the engine running?"


def test_tcp_endpoint_refused() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        endpoint = f"tcp://127.0.0.1:{bound.getsockname()[1]}"
        info, containers = read_containers(endpoint, timeout=2)
    assert not info.reachable and containers == []
    assert info.endpoint == endpoint
    assert "is the engine running?" in info.reason


def test_unsupported_endpoint() -> None:
    info, containers = read_containers("npipe:////./pipe/docker_engine")
    assert (info.reachable, containers) == (False, [])
    assert "unsupported DOCKER_HOST" in info.reason
