"""`read_containers` against the sandboxed Docker 20.10 engine, in each of the four set-ups.

Moved from tests/unit/test_containers.py, where these skipped without DOCKER_HOST: the engine fixture
always provides one, so under PORTSCOPE_REQUIRE_INTEGRATION=1 nothing skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portscope.core.containers import container_from_inspect, read_containers
from portscope.core.model import Container, PortMapping
from tests.integration.test_findings_harness import module_containers
from tests.sandbox.engine import IMAGE, Engine

pytestmark = pytest.mark.integration

RUNS = {
    "cl-web": ["-p", "8080:80", "-p", "127.0.0.1:9000:80", "-p", "5353:53/udp", IMAGE, "sleep", "3600"],
    "cl-eph": ["-P", "--expose", "80", IMAGE, "sleep", "3600"],
    "cl-blank": ["-p", "80", IMAGE, "sleep", "3600"],
    "cl-none": [IMAGE, "sleep", "3600"],
}


@pytest.fixture(scope="module")
def live(engine: Engine) -> Iterator[Engine]:
    with module_containers(engine, RUNS):
        yield engine


def test_read_containers_live(live: Engine) -> None:
    """The SDK path reaches the engine and gives the same records as the docker CLI's own inspect output."""
    info, containers = read_containers(live.docker_host)
    assert info.reachable and info.reason is None
    assert info.endpoint == live.docker_host
    assert info.name == "Docker Engine"
    assert info.version and info.version.startswith("20.10.")
    assert [c.name for c in containers] == sorted(c.name for c in containers)
    by_name = {c.name: c for c in containers}
    assert set(RUNS) <= set(by_name)
    for data in live.inspect(*by_name):
        assert container_from_inspect(data) == by_name[data["Name"].lstrip("/")]


def test_read_containers_live_sandbox_containers(live: Engine) -> None:
    """The published ways come out as requested and in force; IPv6 twins only where docker-proxy makes them."""
    _, containers = read_containers(live.docker_host)
    by_name: dict[str, Container] = {c.name: c for c in containers}
    web = by_name["cl-web"]
    assert web.state == "running" and web.networks[0].ipv4
    assert PortMapping(80, "tcp", "127.0.0.1", "9000") in web.in_force
    assert PortMapping(80, "tcp", "0.0.0.0", "8080") in web.in_force
    assert PortMapping(53, "udp", "", "5353") in web.requested
    assert (PortMapping(80, "tcp", "::", "8080") in web.in_force) == live.setup.userland_proxy
    eph = by_name["cl-eph"]
    assert eph.publish_all and eph.requested == (PortMapping(80, "tcp", "", ""),)
    assert all(m.host_port.isdigit() for m in eph.in_force) and eph.in_force
    assert by_name["cl-blank"].requested == (PortMapping(80, "tcp", "", ""),)
    assert by_name["cl-none"].in_force == () and by_name["cl-none"].requested == ()
