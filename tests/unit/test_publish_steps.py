"""A change's first two steps, `parse_*` and `plan`, on the shipped capture of a real engine: pure, no root.

The third step (preview or commit) reads and writes the kernel's rules: tests/integration/test_publish_*.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from portscope.core.publish.backend import Backend
from portscope.core.publish.errors import ConflictError, InputError
from portscope.core.publish.model import State, StoredBinding, binding_id
from portscope.core.publish.ops import BindingRequest, Plan, PublishRequest, parse_change, parse_publish, plan
from portscope.core.publish.spec import BindingRef, PortSpec
from portscope.core.publish.world import World
from portscope.core.snapshot import read_capture

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.json"
WEB = "ipv4/tcp/0.0.0.0:8080->172.30.0.4:80"  # Docker's binding of web in the sample


@pytest.fixture(scope="module")
def world() -> World:
    return World(backend=Backend("iptables-nft"), snap=read_capture(str(SAMPLE)))


def web_id(world: World) -> str:
    return next(c.id for c in world.snap.containers if c.name == "web")


def stored_publish(port: int, **fields: object) -> StoredBinding:
    values: dict = dict(kind="publish", host_ip="0.0.0.0", host_port=port, protocol="tcp", container_port=80,
                        container_name="web", last_ip="172.30.0.4")  # fmt: skip
    values.update(fields)
    return StoredBinding(id=binding_id("publish", values["host_ip"], port, values["protocol"]), **values)


def test_parse_publish_checks_everything_the_user_typed() -> None:
    assert parse_publish("web", "8081:80", reason="demo") == PublishRequest(
        target="web", spec=PortSpec(80, host_port=8081), reason="demo"
    )
    assert parse_publish("10.1.2.3", "2222:22").target_ip == "10.1.2.3"
    for target, spec, needle in (
        ("web", "0", "1-65535"),
        ("a'b", "80", "container"),
        ("224.0.0.1", "80", "multicast"),
        ("web", "8000-8010:80", "ranges"),
    ):
        with pytest.raises(InputError, match=needle):
            parse_publish(target, spec)
    with pytest.raises(InputError, match="--reason"):
        parse_publish("web", "80", reason="a\nb")


def test_parse_change_reads_ids_host_ports_and_list_ids() -> None:
    assert parse_change("unpublish", "8080") == BindingRequest("unpublish", "8080", BindingRef(host_port=8080))
    assert parse_change("unblock", "ps-1a2b3c4d").ref == BindingRef(binding_id="ps-1a2b3c4d")
    assert parse_change("block", WEB, reason="audit") == BindingRequest("block", WEB, None, "audit")
    with pytest.raises(InputError, match="portscope's own binding: `portscope unpublish ps-1a2b3c4d`"):
        parse_change("block", "ps-1a2b3c4d")
    with pytest.raises(InputError, match="protocol"):
        parse_change("unpublish", "80/icmp")


def test_a_publish_plan_targets_the_container_and_keeps_the_rest(world: World) -> None:
    other = stored_publish(9999)
    current = State(bindings=[other])
    before = copy.deepcopy(current)
    planned = plan(parse_publish("web", "8085:80", reason="demo"), world, current)
    assert planned == Plan(
        action="publish",
        subject=StoredBinding(
            id=binding_id("publish", "0.0.0.0", 8085, "tcp"),
            kind="publish",
            host_ip="0.0.0.0",
            host_port=8085,
            protocol="tcp",
            container_port=80,
            container_id=web_id(world),
            container_name="web",
            last_ip="172.30.0.4",
            bridge="br-6debdcee2df8",
            why="demo",
        ),
        others=(other,),
        reason="demo",
    )
    assert planned.after == [other, planned.subject]
    assert current == before, "planning changed the state"


def test_a_blank_host_port_is_the_lowest_free_one_of_the_ephemeral_range(world: World) -> None:
    # 32768 and 32769 are Docker's (blank's -P ports); portscope's own stored bindings count too.
    assert plan(parse_publish("web", ":80"), world, State()).subject.host_port == 32770
    taken = State(bindings=[stored_publish(32770)])
    assert plan(parse_publish("web", ":80"), world, taken).subject.host_port == 32771


def test_a_taken_host_port_is_refused_unless_forced(world: World) -> None:
    request = parse_publish("cache", "8080:80")
    with pytest.raises(ConflictError, match=r"0\.0\.0\.0:8080/tcp is already published by docker \(to web:80\)"):
        plan(request, world, State())
    forced = plan(parse_publish("cache", "8080:80", force=True), world, State())
    assert forced.subject.host_port == 8080
    assert "0.0.0.0:8080/tcp is already published by docker (to web:80)" in forced.warnings
    with pytest.raises(ConflictError, match="already published by portscope as ps-"):
        plan(parse_publish("cache", "9999:80"), world, State(bindings=[stored_publish(9999)]))


@pytest.mark.parametrize(
    ("target", "spec", "needle"),
    [
        ("web", "10.1.2.3:8081:80", "10.1.2.3 is not an address of this host"),
        ("web", "[::1]:8081:80", "IPv6 has no route_localnet"),
        ("old", "8081:80", "container old is created: start it first"),
        ("nosuch", "8081:80", "no container 'nosuch'"),
        ("172.30.0.255", "8081:80", "broadcast address of 172.30.0.0/24"),
        ("fd00::5", "8081:80", "target fd00::5 is IPv6 but the host address is not"),
    ],
)
def test_a_publish_that_cannot_be_made_is_refused_by_the_plan(world: World, target: str, spec: str, needle: str):
    with pytest.raises(InputError, match=needle):
        plan(parse_publish(target, spec), world, State())


def test_unpublish_and_unblock_plans_drop_exactly_their_binding(world: World) -> None:
    mine, other = stored_publish(8081), stored_publish(8082)
    block = StoredBinding(id=binding_id("block", "0.0.0.0", 8080, "tcp"), kind="block", host_ip="0.0.0.0",
                          host_port=8080, protocol="tcp", container_port=80, why="audit")  # fmt: skip
    current = State(bindings=[mine, other, block])
    planned = plan(parse_change("unpublish", "8081/tcp"), world, current)
    assert (planned.action, planned.subject, planned.after) == ("unpublish", mine, [other, block])
    planned = plan(parse_change("unblock", block.id), world, current)
    assert (planned.subject, planned.reason, planned.after) == (block, "audit", [mine, other])


def test_what_portscope_does_not_hold_cannot_be_unpublished_or_unblocked(world: World) -> None:
    with pytest.raises(InputError, match=r"8080/tcp is published by docker for web: .*`portscope block 8080/tcp`"):
        plan(parse_change("unpublish", "8080"), world, State())
    with pytest.raises(InputError, match="no portscope binding 8081/tcp: see `portscope status`"):
        plan(parse_change("unpublish", "8081"), world, State())
    with pytest.raises(InputError, match="no portscope block 8080/tcp"):
        plan(parse_change("unblock", "8080"), world, State())


def test_a_block_plan_names_dockers_binding_by_port_or_list_id(world: World) -> None:
    by_port = plan(parse_change("block", "8080", reason="audit"), world, State())
    assert plan(parse_change("block", WEB, reason="audit"), world, State()) == by_port
    subject = by_port.subject
    assert (subject.kind, subject.host_port, subject.container_port, subject.container_name) == (
        "block",
        8080,
        80,
        "web",
    )
    assert (subject.last_ip, subject.why, by_port.after) == ("172.30.0.4", "audit", [subject])
    with pytest.raises(InputError, match="is already blocked as"):
        plan(parse_change("block", "8080"), world, State(bindings=[subject]))
    with pytest.raises(InputError, match="nothing is published on 8199"):
        plan(parse_change("block", "8199"), world, State())
