"""`core.record.record`: the parts of dataclasses that portscope's records rely on."""

from __future__ import annotations

import copy
import pickle

import pytest

from portscope.core.model import Binding, PortRange, Socket
from portscope.core.record import FrozenInstanceError, asdict, field, fields, record, replace


@record
class Box:
    name: str
    items: list[int] = field(default_factory=list)
    size: int = 3


def test_defaults_and_factories_are_per_instance() -> None:
    a, b = Box("a"), Box("b")
    a.items.append(1)
    assert (a.items, b.items, a.size) == ([1], [], 3)
    assert fields(Box) == ("name", "items", "size")
    assert repr(a) == "Box(name='a', items=[1], size=3)"


def test_slots_no_dict() -> None:
    with pytest.raises(AttributeError):
        Box("a").other = 1  # type: ignore[attr-defined]


def test_eq_and_hash_follow_the_options() -> None:
    assert Box("a") == Box("a") and Box("a") != Box("b")
    assert Box.__hash__ is None  # mutable with eq: unhashable, like dataclasses
    assert PortRange(1, 2) == PortRange(1, 2) and hash(PortRange(1, 2)) == hash(PortRange(1, 2))
    assert Box("a") != ("a", [], 3)


def test_frozen_refuses_assignment_but_copies_and_pickles() -> None:
    s = Socket("ipv4", "tcp", "0.0.0.0", 80, 1, "x", ("x",))
    with pytest.raises(FrozenInstanceError):
        s.port = 81  # type: ignore[misc]
    assert copy.deepcopy(s) == s
    assert pickle.loads(pickle.dumps(s)) == s
    assert replace(s, port=81).port == 81 and s.port == 80


def test_replace_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError, match="nope"):
        replace(Box("a"), nope=1)


def test_asdict_recurses() -> None:
    b = Binding("ipv4", "tcp", "0.0.0.0", 80, "10.0.0.2", 80, "docker")
    d = asdict(b)
    assert d["host_port"] == 80 and d["carriers"] == [] and d["rules"] == []
    assert asdict(Box("a", [1])) == {"name": "a", "items": [1], "size": 3}
    assert asdict({"k": (PortRange(1, 1),)}) == {"k": ({"first": 1, "last": 1},)}


def test_tuple_record_is_a_named_tuple_with_defaults_methods_and_docs() -> None:
    from portscope.core.record import TupleRecord

    class Point(TupleRecord):
        """A point."""

        x: int
        y: int = 0

        def norm1(self) -> int:
            return abs(self.x) + abs(self.y)

    p = Point(3, -4)
    assert p == (3, -4) and p.x == 3 and p.norm1() == 7
    assert Point(1) == (1, 0) and Point._fields == ("x", "y") and Point.__doc__ == "A point."
    assert Point(1)._replace(y=2) == Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.z = 1  # type: ignore[attr-defined]  # no instance dict: __slots__ = ()
