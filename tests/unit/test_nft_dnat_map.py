"""A DNAT whose target nft looks up per packet in a map (issue 11): never the local address.

`tests/fixtures/nft/dnatmaps.*` is what nft printed for tests/fixtures/nft/src/dnatmaps.nft.in
(`python -m tests.fixtures.make_nft_fixtures`, in a throwaway namespace). A literal map, written in
the rule or declared in the table, gives one binding per element; an element key portscope does not
model (numgen) leaves those bindings uncertain; a map that is not in the dump (as `nft list chain`
prints a rule) gives no binding at all. Only `redirect` goes to the local address.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.model import Binding
from portscope.core.resolve import resolve
from portscope.core.rules.nft_json import parse_nft_json
from portscope.core.rules.nft_text import parse_nft_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nft"
EXPECTED = [
    # (family, host port, target address, target port, certain)
    ("ipv4", 8080, "10.0.0.2", 80, True),
    ("ipv4", 8081, "10.0.0.3", 81, True),
    ("ipv4", 8082, "10.0.0.4", 8080, True),  # the declared map @ports
    ("ipv4", 8083, "10.0.0.9", 8083, True),  # keyed by source address: reach "only from 192.168.1.0/24"
    ("ipv4", 8084, "127.0.0.1", 9000, True),  # redirect: the local address
    ("ipv4", 8085, "10.0.0.5", 8085, False),  # numgen: which element applies is not modelled
    ("ipv4", 8085, "10.0.0.6", 8085, False),
    ("ipv6", 8090, "fd00::2", 80, True),
]


def rows(bindings: list[Binding]) -> list[tuple[str, int | None, str, int | None, bool]]:
    return sorted(
        (b.family, b.host_port, b.target_ip, b.target_port, b.reach.certain)  # type: ignore[union-attr]
        for b in bindings
    )


def parse(name: str) -> list:
    text = (FIXTURES / name).read_text()
    return parse_nft_json(text, source=name) if name.endswith(".json") else parse_nft_text(text, source=name)


@pytest.mark.parametrize("name", ["dnatmaps.nft", "dnatmaps.json"])
def test_a_literal_map_gives_one_binding_per_element(name: str) -> None:
    found = resolve(parse(name))
    assert rows(found.bindings) == EXPECTED
    (by_source,) = [b for b in found.bindings if b.host_port == 8083]
    assert by_source.reach.summary() == "only from 192.168.1.0/24"  # type: ignore[union-attr]


def test_a_map_that_is_not_in_the_dump_is_no_binding() -> None:
    """The table without its `map ports` (as `nft list chain` prints the chain): port 8082 is uncertain, not local."""
    text = (FIXTURES / "dnatmaps.nft").read_text()
    without_map, count = re.subn(r"\tmap ports \{.*?\n\t\}\n\n", "", text, flags=re.S)
    assert count == 1
    found = resolve(parse_nft_text(without_map, source="chain"))
    assert [b for b in found.bindings if b.host_port == 8082] == []
    assert [b.host_port for b in found.bindings if b.target_ip == "127.0.0.1"] == [8084]


PORTS = st.integers(1, 65535)
ADDRESSES = st.tuples(st.integers(1, 223), st.integers(0, 255), st.integers(0, 255), st.integers(1, 254)).map(
    lambda t: ".".join(map(str, t))
)


@given(elements=st.dictionaries(PORTS, st.tuples(ADDRESSES, PORTS), min_size=1, max_size=8))
def test_every_element_of_a_port_map_is_its_own_binding(elements: dict[int, tuple[str, int]]) -> None:
    """`dnat ip to tcp dport map { P : A . Q, ... }` as nft prints it: exactly one certain binding per element."""
    body = ", ".join(f"{port} : {addr} . {to}" for port, (addr, to) in sorted(elements.items()))
    text = (
        "table ip t {\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        f"\t\tdnat ip to tcp dport map {{ {body} }}\n\t}}\n}}\n"
    )
    found = resolve(parse_nft_text(text, source="gen"))
    assert rows(found.bindings) == sorted(("ipv4", p, a, q, True) for p, (a, q) in elements.items())
