"""`@record`: typed record classes like `@dataclass(slots=True)`, at a fraction of the cost to define.

portscope's one-shot commands must start fast (`portscope list --json` within 0.15 s with no
rules), and the records read on every run cost there: importing `dataclasses` pulls in `inspect`
(~15 ms), and each dataclass takes ~0.7 ms to define (~1.5 ms frozen), ~40 ms for the records a
`list` needs. `record` keeps what portscope uses of dataclasses (fields from annotations, defaults
and `field(default_factory=...)`, `__slots__`, `frozen`, `eq`, `unsafe_hash`, a readable repr) and
generates only `__init__` from source; the rest are shared functions. `fields`, `replace` and
`asdict` stand in for their `dataclasses` namesakes, `Literal` for typing's and `TupleRecord` for
`typing.NamedTuple` (without importing typing, ~5 ms).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Literal, TypeVar
    from typing import NamedTuple as TupleRecord

    T = TypeVar("T")
else:  # `Literal[...]` aliases are only documentation at run time: each is plain `str`

    class _Literal:
        def __getitem__(self, _values: object) -> type[str]:
            return str

    Literal = _Literal()

    class _TupleRecordMeta(type):
        """`class X(TupleRecord)` with annotated fields (and defaults) becomes a `collections.namedtuple` subclass."""

        def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> type:
            if not bases:
                return super().__new__(mcls, name, bases, ns)
            names = list(ns.get("__annotations__", {}))
            defaults = [ns[n] for n in names if n in ns]
            base = namedtuple(name, names, defaults=defaults or None, module=ns.get("__module__"))
            body = {k: v for k, v in ns.items() if k not in names}
            body["__slots__"] = ()
            return type(name, (base,), body)

    class TupleRecord(metaclass=_TupleRecordMeta):
        """What `typing.NamedTuple` is to a class statement, built on `collections.namedtuple`."""


_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class _Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Any) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] = _MISSING) -> Any:
    """A field's default: a value, or a factory called for every new record."""
    return _Field(default, default_factory)


def record(cls: type[T] | None = None, *, frozen: bool = False, eq: bool = True, unsafe_hash: bool = False) -> Any:
    """Make `cls` a slotted record class; usable bare (`@record`) or with options (`@record(frozen=True)`)."""

    def wrap(c: type[T]) -> type[T]:
        return _build(c, frozen=frozen, eq=eq, unsafe_hash=unsafe_hash)

    return wrap if cls is None else wrap(cls)


def fields(obj: Any) -> tuple[str, ...]:
    """The field names of a record class or instance, in order."""
    return obj.__record_fields__


def replace(obj: T, **changes: Any) -> T:
    """A copy of `obj` with some fields changed."""
    values = {name: getattr(obj, name) for name in obj.__record_fields__}  # type: ignore[attr-defined]
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(obj)(**values)


def asdict(obj: Any) -> Any:
    """Records, lists, tuples and dicts converted recursively to plain dicts, lists and tuples."""
    if hasattr(type(obj), "__record_fields__"):
        return {name: asdict(getattr(obj, name)) for name in obj.__record_fields__}
    if isinstance(obj, list):
        return [asdict(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return {k: asdict(v) for k, v in obj.items()}
    return obj


def _build(cls: type, *, frozen: bool, eq: bool, unsafe_hash: bool) -> Any:
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 - importing inspect is the cost avoided
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__", *names)}
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    env: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params, body = [], []
    for name in names:
        default = defaults.get(name, _MISSING)
        value = name
        if isinstance(default, _Field):
            if default.default_factory is not _MISSING:
                env[f"_f_{name}"] = default.default_factory
                params.append(f"{name}=_MISSING")
                value = f"_f_{name}() if {name} is _MISSING else {name}"
            elif default.default is not _MISSING:
                env[f"_d_{name}"] = default.default
                params.append(f"{name}=_d_{name}")
            else:
                params.append(name)
        elif default is not _MISSING:
            env[f"_d_{name}"] = default
            params.append(f"{name}=_d_{name}")
        else:
            params.append(name)
        body.append(f"_set(self, {name!r}, {value})" if frozen else f"self.{name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n    " + ("\n    ".join(body) or "pass")
    exec(source, env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    namespace.update(
        __slots__=names + tuple(cls.__dict__.get("__extra_slots__", ())),  # caches that are not fields
        __init__=init,
        __repr__=_repr,
        __record_fields__=names,
        __match_args__=names,
        __record_key__=_key_getter(names),
        __getstate__=_getstate,
        __setstate__=_setstate,
    )
    if eq:
        namespace["__eq__"] = _eq
    if frozen:
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
    if unsafe_hash or (frozen and eq):
        namespace["__hash__"] = _hash
    elif eq:
        namespace["__hash__"] = None
    return type(cls)(cls.__name__, cls.__bases__, namespace)


def _repr(self: Any) -> str:
    parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_fields__)
    return f"{type(self).__qualname__}({parts})"


def _eq(self: Any, other: Any) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    key = self.__class__.__record_key__
    return key(self) == key(other)


def _hash(self: Any) -> int:
    return hash(self.__class__.__record_key__(self))


def _key_getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    """A function from a record to the tuple of its field values (attrgetter: fast, and not a method)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return staticmethod(lambda self: (get(self),))  # type: ignore[return-value]
    return staticmethod(lambda self: ())  # type: ignore[return-value]


def _getstate(self: Any) -> list[Any]:
    """For copy and pickle (frozen records refuse the setattr the default protocol uses)."""
    return [getattr(self, name) for name in self.__record_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__record_fields__, state, strict=True):
        object.__setattr__(self, name, value)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
