"""The recreate plan from real `docker inspect` answers (tests/fixtures/docker, captured from an engine)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.publish.spec import PortSpec, parse_port_spec
from portscope.core.recreate.describe import describe, docker_run
from portscope.core.recreate.errors import RecreateRefused
from portscope.core.recreate.plan import PortChange, plan_recreate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docker"


def inspect(name: str) -> dict:
    return json.loads((FIXTURES / f"inspect-{name}.json").read_text())


def change(add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> PortChange:
    return PortChange(add=tuple(map(parse_port_spec, add)), remove=tuple(map(parse_port_spec, remove)))


def test_everything_but_the_ports_is_carried_over() -> None:
    web = inspect("web")
    plan = plan_recreate(web, change(add=("8081:80",), remove=("5353:53/udp",)), image_name_current=True)
    body = plan.create_body
    assert plan.port_bindings_after == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "9000"},
                   {"HostIp": "", "HostPort": "8081"}],
    }  # fmt: skip
    for key in ("Env", "Cmd", "Entrypoint", "Labels", "User", "WorkingDir", "Image", "Healthcheck", "StopSignal"):
        assert body.get(key) == web["Config"].get(key), key
    host = dict(body["HostConfig"])
    assert host.pop("PortBindings") == plan.port_bindings_after
    expected = {k: v for k, v in web["HostConfig"].items() if k != "PortBindings"}
    assert {k: v for k, v in host.items() if k in expected} == expected
    assert "Hostname" not in body  # the engine's default (the short ID) is not carried to the new container
    assert list(body["NetworkingConfig"]["EndpointsConfig"]) == ["bridge"]


def test_a_moved_tag_keeps_the_image_id() -> None:
    web = inspect("web")
    plan = plan_recreate(web, change(add=("8081:80",)), image_name_current=False)
    assert plan.create_body["Image"] == web["Image"]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"Config": {"Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "api"}}},
         "docker compose up -d api"),
        ({"HostConfig": {"NetworkMode": "host"}}, "host's network"),
        ({"HostConfig": {"NetworkMode": "none"}}, "no network"),
        ({"HostConfig": {"NetworkMode": "container:abc"}}, "shares another container's network"),
        ({"HostConfig": {"AutoRemove": True}}, "--rm"),
    ],
)  # fmt: skip
def test_refused_containers_say_why(edit: dict, words: str) -> None:
    doc = copy.deepcopy(inspect("web"))
    for section, values in edit.items():
        doc[section].update(values)
    with pytest.raises(RecreateRefused, match=words):
        plan_recreate(doc, change(add=("8081:80",)), image_name_current=True)


@pytest.mark.parametrize(
    ("add", "remove", "words"),
    [(("8080:81",), (), "already publishes host port 8080/tcp"), ((), ("7000:80",), "does not publish")],
)
def test_bad_port_changes_are_refused(add: tuple[str, ...], remove: tuple[str, ...], words: str) -> None:
    with pytest.raises(RecreateRefused, match=words):
        plan_recreate(inspect("web"), change(add, remove), image_name_current=True)


def test_removing_a_container_port_drops_all_its_bindings() -> None:
    plan = plan_recreate(inspect("web"), change(remove=("80",)), image_name_current=True)
    assert plan.port_bindings_after == {"53/udp": [{"HostIp": "", "HostPort": "5353"}]}


def test_the_dry_run_shows_the_change_and_a_docker_run() -> None:
    plan = plan_recreate(inspect("web"), change(add=("8081:80",), remove=("8080:80",)), image_name_current=True)
    text = "\n".join(describe(plan, 30))
    assert "- 8080:80/tcp" in text and "+ 8081:80/tcp" in text and "= 127.0.0.1:9000:80/tcp" in text
    argv = docker_run(plan)
    assert argv[:5] == ["docker", "run", "-d", "--name", plan.name]
    assert "8081:80/tcp" in argv and "8080:80/tcp" not in argv


specs = st.builds(
    PortSpec,
    container_port=st.integers(1, 65535),
    protocol=st.sampled_from(["tcp", "udp", "sctp"]),
    host_ip=st.sampled_from([None, "127.0.0.1", "10.1.2.3", "::1"]),
    host_port=st.integers(20000, 30000),
)


@given(st.lists(specs, max_size=6, unique_by=lambda s: (s.host_port, s.protocol)))
def test_adding_then_removing_gives_back_the_original_ports(added: list[PortSpec]) -> None:
    web = inspect("web")
    grown = plan_recreate(web, PortChange(add=tuple(added)), image_name_current=True)
    doc = copy.deepcopy(web)
    doc["HostConfig"]["PortBindings"] = grown.port_bindings_after
    back = plan_recreate(doc, PortChange(remove=tuple(added)), image_name_current=True)
    assert back.port_bindings_after == web["HostConfig"]["PortBindings"]
