"""`portscope recreate` on a real engine: lossless, traffic on the new port only, every failure undone.

The container of record has a named volume, an anonymous volume holding data, two networks with
aliases, a health check and a restart policy. `docker inspect` before and after may differ only where
`CHANGED_BY_RECREATE` says; a neighbour on each network reaches it by alias and reads the data; a client
namespace reaches the added host port and not the removed one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from portscope.core.recreate.plan import CHANGED_BY_RECREATE
from tests.integration.test_publish_harness import HOST_PYTHON, Portscope
from tests.sandbox.client import Client
from tests.sandbox.engine import IMAGE, REPO_ROOT, Engine, wait_for

pytestmark = pytest.mark.integration
#: The swap, its refusals and its undo are engine API calls, the same whatever the firewall backend: they run
#: on one set-up. Traffic to the new port and none to a removed one is checked on all four.
ENGINE_LOGIC = pytest.mark.setups("nft-noproxy")

WEB, PEER_FRONT, PEER_BACK = "rc-web", "rc-peer-front", "rc-peer-back"
STATIC_IP = {"rc-web": "10.231.0.10", "rc-flaky": "10.231.0.11"}
MAC = "02:42:0a:e7:00:63"
SERVE = "mkdir -p /anon/www && echo kept-{tag} > /anon/www/data && exec httpd -f -p 80 -h /anon/www"


def _start_web(engine: Engine, name: str, *extra: str, health: str = "true") -> None:
    engine.run_container(
        name, "--network", "rc-front", *(["--mac-address", MAC] if name == WEB else []),
        "--network-alias", "webfront", "-p", "18500:80", "-p", "18501:80",
        "-v", "rc-named:/named", "-v", "/anon", "--health-cmd", health, "--health-interval", "1s",
        "--restart", "unless-stopped", "-e", "MODE=test", "--label", "team=ops", *extra,
        IMAGE, "sh", "-c", SERVE.format(tag=name),
    )  # fmt: skip
    engine.docker("network", "connect", "--alias", "webback", "--ip", STATIC_IP[name], "rc-back", name)
    assert wait_for(lambda: _health(engine, name) == "healthy", timeout=60), f"{name} never became healthy"


def _health(engine: Engine, name: str) -> str | None:
    state = engine.inspect(name)[0]["State"]
    return (state.get("Health") or {}).get("Status") if state.get("Running") else "not running"


FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode().strip())"


def _fetch_from(engine: Engine, peer: str, url: str) -> str:
    """GET `url` from inside `peer`, by name through the engine's DNS (the host's python3; busybox wget is static)."""
    done = engine.docker("exec", peer, HOST_PYTHON, "-c", FETCH, url, check=False)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def scene(engine: Engine) -> Iterator[Portscope]:
    ps = Portscope(engine, check_docker_chains=False)  # recreating a container changes Docker's rules
    engine.docker("network", "create", "rc-front")
    engine.docker("network", "create", "--subnet", "10.231.0.0/24", "rc-back")
    engine.docker("volume", "create", "rc-named")
    for peer, net in ((PEER_FRONT, "rc-front"), (PEER_BACK, "rc-back")):
        engine.run_container(peer, "--network", net, "-v", "/usr:/usr:ro", IMAGE, "sleep", "100000")
    try:
        yield ps
    finally:
        for name in (WEB, PEER_FRONT, PEER_BACK):
            engine.docker("rm", "-f", name, check=False)
        leftovers = engine.docker("ps", "-aq", "--filter", f"name={WEB}", check=False).stdout.split()
        if leftovers:
            engine.docker("rm", "-f", *leftovers, check=False)
        engine.docker("volume", "prune", "-f", check=False)
        engine.docker("network", "rm", "rc-front", "rc-back", check=False)


@pytest.fixture
def web(scene: Portscope) -> Iterator[str]:
    _start_web(scene.engine, WEB)
    yield WEB
    scene.engine.docker("rm", "-f", WEB, check=False)
    for name in scene.engine.docker("ps", "-aq", "--filter", f"name={WEB}-portscope-old", check=False).stdout.split():
        scene.engine.docker("rm", "-f", name, check=False)


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{path}.{key}" if path else key))
        return out
    return {path: value}


def _volumes(inspect: dict) -> set[tuple]:
    return {(m["Type"], m.get("Name"), m["Destination"], m["RW"]) for m in inspect["Mounts"]}


def _unexplained(before: dict, after: dict) -> list[str]:
    flat_before, flat_after = _flatten(before), _flatten(after)
    differing = {k for k in flat_before.keys() | flat_after.keys() if flat_before.get(k) != flat_after.get(k)}
    allowed = tuple(CHANGED_BY_RECREATE)
    return sorted(k for k in differing if not any(k == a or k.startswith(a + ".") for a in allowed))


def test_recreate_adds_and_removes_a_port_losslessly(scene: Portscope, web: str, client: Client) -> None:
    engine = scene.engine
    before = engine.inspect(web)[0]
    assert client.tcp_get(client.engine_ip, 18501, timeout=3), "the port to remove does not answer before"
    scene.ok("recreate", web, "--add", "18502:80", "--remove", "18501:80")
    after = engine.inspect(web)[0]
    assert after["Id"] != before["Id"]
    assert _unexplained(before, after) == []
    assert _volumes(after) == _volumes(before)
    networks = after["NetworkSettings"]["Networks"]
    assert networks["rc-back"]["IPAddress"] == STATIC_IP[web], "the static address was not kept"
    assert networks["rc-front"]["MacAddress"] == MAC, "the MAC address was not kept"
    assert set(networks) == set(before["NetworkSettings"]["Networks"])
    assert after["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "18500"}, {"HostIp": "", "HostPort": "18502"}]
    }
    assert _health(engine, web) == "healthy"
    assert f"kept-{web}" in (wait_for(lambda: client.tcp_get(client.engine_ip, 18502, "/data", timeout=2), 20) or "")
    assert client.tcp_get(client.engine_ip, 18501, "/data", timeout=2) is None, "the removed port still answers"
    assert _fetch_from(engine, PEER_FRONT, "http://webfront/data") == f"kept-{web}"
    assert _fetch_from(engine, PEER_BACK, "http://webback/data") == f"kept-{web}"
    left = engine.docker("ps", "-aq", "--filter", f"name={web}-portscope-old").stdout.split()
    assert left == [], "the original was not removed"


@ENGINE_LOGIC
def test_dry_run_prints_the_plan_and_changes_nothing(scene: Portscope, web: str) -> None:
    before = scene.engine.inspect(web)[0]["Id"]
    out = scene.ok("recreate", web, "--add", "18503:80", "--dry-run")
    assert "+ 18503:80/tcp" in out and "as docker run:" in out and "-p 18503:80/tcp" in out
    assert scene.engine.inspect(web)[0]["Id"] == before


def _assert_back_as_it_was(engine: Engine, name: str, original_id: str, client: Client) -> None:
    state = engine.inspect(name)[0]
    assert state["Id"] == original_id and state["Name"] == f"/{name}"
    assert f"kept-{name}" in (wait_for(lambda: client.tcp_get(client.engine_ip, 18500, "/data", timeout=2), 30) or "")
    names = engine.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert [n for n in names if n.startswith(name)] == [name], names


@ENGINE_LOGIC
@pytest.mark.parametrize("taken", ["18500:81", "18510:80"])
def test_a_taken_port_is_refused_before_any_change(scene: Portscope, web: str, client: Client, taken: str) -> None:
    """18500 is the container's own; 18510 another container's."""
    original = scene.engine.inspect(web)[0]["Id"]
    scene.engine.run_container("rc-holder", "-p", "18510:80", IMAGE, "sleep", "100000")
    try:
        done = scene.run("recreate", web, "--add", taken)
    finally:
        scene.engine.docker("rm", "-f", "rc-holder", check=False)
    port = taken.split(":")[0]
    assert done.returncode == 2 and port in done.stderr and len(done.stderr.strip().splitlines()) == 1
    _assert_back_as_it_was(scene.engine, web, original, client)


@ENGINE_LOGIC
def test_a_start_that_fails_puts_the_original_back(scene: Portscope, web: str, client: Client) -> None:
    original = scene.engine.inspect(web)[0]["Id"]
    done = scene.run("recreate", web, "--add", "10.99.99.99:18504:80")  # an address the host does not have
    assert done.returncode == 5, done.stderr
    assert "back as it was" in done.stderr
    _assert_back_as_it_was(scene.engine, web, original, client)


@ENGINE_LOGIC
def test_a_health_check_that_never_passes_puts_the_original_back(scene: Portscope, client: Client) -> None:
    engine = scene.engine
    name = "rc-flaky"
    _start_web(engine, name, health="test ! -e /anon/www/broken")
    try:
        original = engine.inspect(name)[0]["Id"]
        engine.docker("exec", name, "sh", "-c", ": > /anon/www/broken")  # from now on, no container of it is healthy
        done = scene.run("recreate", name, "--add", "18505:80", "--remove", "18500:80", "--timeout", "8")
        assert done.returncode == 5, done.stderr
        assert "healthy" in done.stderr and "back as it was" in done.stderr
        state = engine.inspect(name)[0]
        assert state["Id"] == original and state["State"]["Running"]
    finally:
        engine.docker("rm", "-f", name, check=False)


KILL_AT = """
import os, signal, sys
from portscope.core.recreate import engine as engine_mod, swap
from portscope.core.recreate.run import RecreateRequest, prepare
from portscope.core.recreate.plan import PortChange
from portscope.core.publish.spec import parse_port_spec

step = sys.argv[1]

class Dying(engine_mod.Engine):
    def _call(self, what, call):
        result = call()
        if what.startswith(step):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

with engine_mod.connect() as plain:
    engine = Dying(plain.client)
    plan = prepare(engine, RecreateRequest(sys.argv[2], PortChange(add=(parse_port_spec("18506:80"),))))
    swap.swap(engine, plan, os.environ["PORTSCOPE_STATE_DIR"], timeout=60)
"""


@ENGINE_LOGIC
@pytest.mark.parametrize("step", ["docker stop", "docker rename", "docker create", "docker start"])
def test_kill_9_between_steps_then_resume(scene: Portscope, web: str, client: Client, step: str) -> None:
    engine = scene.engine
    original = engine.inspect(web)[0]["Id"]
    argv = [sys.executable, "-c", KILL_AT, step, web]
    killed = engine.ns.run(argv, check=False, cwd=REPO_ROOT, env=scene.env(), timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    out = scene.ok("recreate", "--resume")
    running = [c for c in engine.inspect(*_names(engine, web)) if c["State"]["Running"]]
    assert len(running) == 1, out
    (now,) = running
    assert now["Name"] == f"/{web}"
    assert f"kept-{web}" in (wait_for(lambda: client.tcp_get(client.engine_ip, 18500, "/data", timeout=2), 30) or "")
    if now["Id"] == original:
        assert "undid" in out
    else:
        assert "finished" in out and "18506" in json.dumps(now["HostConfig"]["PortBindings"])
    assert scene.ok("recreate", "--resume").strip() == "no interrupted recreate to resume"


def _names(engine: Engine, prefix: str) -> list[str]:
    return [n for n in engine.docker("ps", "-a", "--format", "{{.Names}}").stdout.split() if n.startswith(prefix)]


@ENGINE_LOGIC
def test_compose_containers_get_advice_instead(scene: Portscope) -> None:
    engine = scene.engine
    name = "rc-compose"
    labels = ["com.docker.compose.project=shop", "com.docker.compose.service=api",
              "com.docker.compose.project.config_files=/srv/shop/compose.yaml"]  # fmt: skip
    engine.run_container(name, *(f"--label={label}" for label in labels), IMAGE, "sleep", "100000")
    try:
        done = scene.run("recreate", name, "--add", "18507:80")
        assert done.returncode == 2
        assert "/srv/shop/compose.yaml" in done.stderr and "docker compose up -d api" in done.stderr
        assert 'add "18507:80/tcp"' in done.stderr
    finally:
        engine.docker("rm", "-f", name, check=False)


@ENGINE_LOGIC
def test_host_network_containers_are_refused(scene: Portscope) -> None:
    engine = scene.engine
    name = "rc-hostnet"
    engine.run_container(name, "--network", "host", IMAGE, "sleep", "100000")
    try:
        done = scene.run("recreate", name, "--add", "18508:80")
        assert done.returncode == 2 and "host's network" in done.stderr
    finally:
        engine.docker("rm", "-f", name, check=False)


@ENGINE_LOGIC
def test_no_argv_is_passed_through_a_shell(scene: Portscope) -> None:
    done = scene.run("recreate", "$(touch /tmp/rc-pwned)", "--add", "18509:80")
    assert done.returncode in (2, 5) and len(done.stderr.strip().splitlines()) == 1
    assert subprocess.run(["test", "-e", "/tmp/rc-pwned"], check=False).returncode != 0


@ENGINE_LOGIC
def test_a_stopped_container_is_recreated_stopped(scene: Portscope, web: str) -> None:
    engine = scene.engine
    engine.docker("stop", "-t", "1", web)
    scene.ok("recreate", web, "--add", "18512:80")
    after = engine.inspect(web)[0]
    assert not after["State"]["Running"] and after["State"]["Status"] == "created"
    assert {"HostIp": "", "HostPort": "18512"} in after["HostConfig"]["PortBindings"]["80/tcp"]
    assert _names(engine, web) == [web]


def test_adopt_turns_a_portscope_binding_into_a_docker_port(scene: Portscope, web: str, client: Client) -> None:
    engine = scene.engine
    out = scene.ok("publish", web, "18513:80")
    binding = next(word for word in out.split() if word.startswith("ps-"))
    assert f"kept-{web}" in (wait_for(lambda: client.tcp_get(client.engine_ip, 18513, "/data", timeout=2), 20) or "")
    scene.ok("recreate", "--adopt", binding)
    after = engine.inspect(web)[0]
    assert {"HostIp": "0.0.0.0", "HostPort": "18513"} in after["HostConfig"]["PortBindings"]["80/tcp"]
    assert binding not in scene.ok("status"), "portscope's binding was not removed"
    assert "PORTSCOPE" not in "\n".join(line for line in scene.save().splitlines() if "18513" in line)
    assert f"kept-{web}" in (wait_for(lambda: client.tcp_get(client.engine_ip, 18513, "/data", timeout=2), 20) or "")


FAIL_AT = """
import os, sys
from portscope.core.recreate import engine as engine_mod, swap
from portscope.core.recreate.errors import RecreateFailed
from portscope.core.recreate.run import RecreateRequest, prepare
from portscope.core.recreate.plan import PortChange
from portscope.core.publish.spec import parse_port_spec

class Refusing(engine_mod.Engine):
    def create(self, name, body):
        raise RecreateFailed("docker create: refused by the engine (injected)")

with engine_mod.connect() as plain:
    engine = Refusing(plain.client)
    plan = prepare(engine, RecreateRequest(sys.argv[1], PortChange(add=(parse_port_spec("18514:80"),))))
    try:
        swap.swap(engine, plan, os.environ["PORTSCOPE_STATE_DIR"], timeout=60)
    except RecreateFailed as exc:
        print(exc)
"""


@ENGINE_LOGIC
def test_a_refused_create_puts_the_original_back(scene: Portscope, web: str, client: Client) -> None:
    engine = scene.engine
    original = engine.inspect(web)[0]["Id"]
    done = engine.ns.run([sys.executable, "-c", FAIL_AT, web], check=False, cwd=REPO_ROOT, env=scene.env(), timeout=180)
    assert done.returncode == 0, done.stderr
    assert "refused by the engine" in done.stdout and "back as it was" in done.stdout
    _assert_back_as_it_was(engine, web, original, client)
    assert scene.ok("recreate", "--resume").strip() == "no interrupted recreate to resume"
