"""State file, lock, audit log, free-port choice, conflict check and placement of stored bindings."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.model import (
    Binding,
    Container,
    ContainerNetwork,
    EngineInfo,
    HostFacts,
    PortMapping,
    PortRange,
    Snapshot,
    Socket,
)
from portscope.core.publish import audit, state
from portscope.core.publish.conflicts import check_free, overlaps
from portscope.core.publish.errors import ConflictError
from portscope.core.publish.freeport import pick_port, taken_ports
from portscope.core.publish.model import State, StoredBinding, binding_id
from portscope.core.publish.placement import place_all
from portscope.core.publish.validate import is_binding_id

HOST = HostFacts(
    hostname="h",
    kernel="6",
    is_root=True,
    addresses=("10.203.0.1", "172.17.0.1"),
    networks=(("docker0", "172.17.0.1/16"), ("eth0", "10.203.0.1/24")),
)


def stored(**kw: object) -> StoredBinding:
    fields = {"id": "ps-00000001", "kind": "publish", "host_ip": "0.0.0.0", "host_port": 8081, "protocol": "tcp"}
    fields |= {"container_port": 80, "container_id": "aaa", "container_name": "web", "last_ip": "172.17.0.2"}
    fields |= kw
    return StoredBinding(**fields)  # type: ignore[arg-type]


def container(cid: str = "aaa", name: str = "web", ip: str | None = "172.17.0.2", state_: str = "running") -> Container:
    return Container(
        id=cid,
        name=name,
        image="i",
        state=state_,
        network_mode="bridge",
        networks=(ContainerNetwork("bridge", ip, None),),
    )


def test_state_round_trip_is_private_and_atomic(tmp_path: Path) -> None:
    folder = str(tmp_path / "st")
    with state.locked(folder) as f:
        assert state.load(f).bindings == []
        state.save(f, State([stored(why="because")]))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(folder, "state.json")).st_mode) == 0o600
    assert [b.why for b in state.load(folder).bindings] == ["because"]
    assert not [n for n in os.listdir(folder) if n.startswith(".state.json-")]
    doc = json.loads(Path(folder, "state.json").read_text())
    assert doc["schema"] == state.SCHEMA


def test_lock_serialises(tmp_path: Path) -> None:
    order: list[str] = []

    def second() -> None:
        with state.locked(str(tmp_path)):
            order.append("second")

    with state.locked(str(tmp_path)):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.2)
        order.append("first")
    t.join(5)
    assert order == ["first", "second"]


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"schema": "other"}')
    with pytest.raises(Exception, match="not a portscope state file"):
        state.load(str(tmp_path))


def test_audit_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "alice")
    audit.record(str(tmp_path), "publish", "ps-1 ...", "ok", ["-t nat -A PORTSCOPE x"], [], "why")
    audit.record(str(tmp_path), "unpublish", "ps-1 ...", "ok", [], ["-t nat -A PORTSCOPE x"])
    lines = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [x["action"] for x in lines] == ["publish", "unpublish"]
    assert lines[0]["who"] == "alice" and lines[0]["reason"] == "why" and lines[1]["rules_removed"]


@given(st.sampled_from(["publish", "block"]), st.ip_addresses().map(str), st.integers(1, 65535))
def test_ids_are_short_and_stable(kind: str, ip: str, port: int) -> None:
    a = binding_id(kind, ip, port, "tcp")  # type: ignore[arg-type]
    assert a == binding_id(kind, ip, port, "tcp") and is_binding_id(a)  # type: ignore[arg-type]
    assert a != binding_id(kind, ip, port, "udp")  # type: ignore[arg-type]


def test_blank_port_skips_everything_taken() -> None:
    sockets = [Socket("ipv4", "tcp", "0.0.0.0", 40000), Socket("ipv4", "udp", "0.0.0.0", 40003)]
    bindings = [Binding("ipv4", "tcp", "0.0.0.0", 40001, "1.2.3.4", 80, "manual", host_port_last=40002)]
    docker = Container("d", "d", "i", "running", "bridge", in_force=(PortMapping(80, "tcp", "0.0.0.0", "40004"),))
    taken = taken_ports("tcp", sockets, bindings, [docker], [stored(host_port=40005)])
    assert taken >= {40000, 40001, 40002, 40004, 40005} and 40003 not in taken
    assert pick_port(PortRange(40000, 40010), (PortRange(40003, 40003),), taken) == 40006
    assert pick_port(None, (), set()) == 32768
    with pytest.raises(ConflictError):
        pick_port(PortRange(40000, 40001), (), {40000, 40001})


def test_overlaps() -> None:
    assert overlaps("0.0.0.0", "10.0.0.1") and overlaps("::", "10.0.0.1")
    assert not overlaps("127.0.0.1", "10.0.0.1") and not overlaps("0.0.0.0", "::1")


def test_conflicts_name_the_holder() -> None:
    kw = {"bindings": [], "sockets": [], "containers": [], "stored": [], "findings": []}
    assert check_free("0.0.0.0", 8081, "tcp", **kw).errors == []  # type: ignore[arg-type]
    v = check_free("0.0.0.0", 8081, "tcp", **kw | {"stored": [stored()]})  # type: ignore[arg-type]
    assert "already published by portscope as ps-00000001" in v.errors[0]
    v = check_free("0.0.0.0", 22, "tcp", **kw | {"sockets": [Socket("ipv6", "tcp", "::", 22, 7, "sshd")]})  # type: ignore[arg-type]
    assert "sshd (pid 7)" in v.errors[0]
    assert check_free("0.0.0.0", 22, "udp", **kw | {"sockets": [Socket("ipv6", "tcp", "::", 22)]}).errors == []  # type: ignore[arg-type]
    docker = Binding("ipv4", "tcp", "0.0.0.0", 8080, "172.17.0.3", 80, "docker", container_name="w2")
    v = check_free("10.203.0.1", 8080, "tcp", **kw | {"bindings": [docker]})  # type: ignore[arg-type]
    assert "published by docker (to w2:80)" in v.errors[0]
    stopped = Container("s", "sleepy", "i", "exited", "bridge", requested=(PortMapping(80, "tcp", "", "8085"),))
    v = check_free("0.0.0.0", 8085, "tcp", **kw | {"containers": [stopped]})  # type: ignore[arg-type]
    assert "stopped container sleepy" in v.errors[0]


def snap(*containers: Container, reachable: bool = True) -> Snapshot:
    return Snapshot(host=HOST, taken_at="now", engine=EngineInfo(reachable=reachable), containers=list(containers))


def test_placement_follows_moves_and_flags() -> None:
    moved, gone, stopped_b, plain = (
        stored(),
        stored(id="ps-00000002", container_id="bbb", container_name="old"),
        stored(id="ps-00000003", container_id="ccc", container_name="sleepy"),
        stored(id="ps-00000004", container_id=None, container_name=None, target_ip="10.203.0.9"),
    )
    p = place_all(
        [moved, gone, stopped_b, plain],
        snap(container(ip="172.17.0.5"), container("ccc", "sleepy", None, "exited")),
    )
    assert [(x.binding.id, x.target_ip, x.bridge) for x in p.placed] == [
        ("ps-00000001", "172.17.0.5", "docker0"),
        ("ps-00000004", "10.203.0.9", "eth0"),
    ]
    assert [(b.id, old, new) for b, old, new in p.moved] == [("ps-00000001", "172.17.0.2", "172.17.0.5")]
    assert (gone.health, stopped_b.health, moved.health, moved.last_ip) == ("orphaned", "waiting", "ok", "172.17.0.5")


def test_placement_follows_a_recreated_container_by_name_and_keeps_rules_when_the_engine_is_down() -> None:
    b = stored()
    p = place_all([b], snap(container("new-id", "web", "172.17.0.9")))
    assert b.container_id == "new-id" and p.placed[0].target_ip == "172.17.0.9" and p.notes
    p = place_all([b], snap(reachable=False))
    assert p.placed[0].target_ip == "172.17.0.9" and b.health == "ok"
