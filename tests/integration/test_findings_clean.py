"""`portscope conflicts` on a healthy host, in each of the four set-ups.

The six containers of test_list_matches_docker, published the usual ways, give exactly one finding:
`-p 127.0.0.1:9000:80` is reachable from the link on Docker 20.10 (proven with packets in
test_findings_loopback). Without that container there is nothing to report and the exit status is 0.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_findings_harness import conflicts, module_containers, remove_containers, web_command
from tests.sandbox.engine import IMAGE, Engine

pytestmark = pytest.mark.integration

LOCAL = "clean-local"


@pytest.fixture(scope="module")
def six(engine: Engine) -> Iterator[dict[str, str]]:
    runs = {
        "clean-web": ["-p", "8080:80", *web_command("clean-web")],
        LOCAL: ["-p", "127.0.0.1:9000:80", *web_command(LOCAL)],
        "clean-dns": ["-p", "5353:53/udp", IMAGE, "sleep", "3600"],
        "clean-expose": ["-P", "--expose", "80", *web_command("clean-expose")],
        "clean-blank": ["-p", "80", *web_command("clean-blank")],
        "clean-none": [IMAGE, "sleep", "3600"],
    }
    with module_containers(engine, runs) as ips:
        yield ips


def test_only_the_loopback_publish_is_reported(engine: Engine, six: dict[str, str]) -> None:
    """Exactly one finding: loopback-reachable (error) for 127.0.0.1:9000 of clean-local; exit status 1."""
    result = conflicts(engine)
    assert [(f["kind"], f["severity"], f["container"], f["port"]) for f in result.findings] == [
        ("loopback-reachable", "error", LOCAL, 9000)
    ], result.summary()
    (finding,) = result.findings
    assert finding["bindings"] == [f"ipv4/tcp/127.0.0.1:9000->{six[LOCAL]}:80"]
    assert any("-d 127.0.0.1/32" in r["text"] and "DNAT" in r["text"] for r in finding["evidence"]["rules"])
    assert result.returncode == 1


def test_nothing_without_the_loopback_publish(engine: Engine, six: dict[str, str]) -> None:
    """The same host without clean-local: no findings at all, exit status 0."""
    remove_containers(engine, LOCAL)
    result = conflicts(engine)
    assert result.findings == [], result.summary()
    assert result.doc["counts"] == {"error": 0, "warning": 0, "info": 0}
    assert result.returncode == 0
