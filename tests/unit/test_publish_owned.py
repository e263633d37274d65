"""Ownership: only recorded chains (or, for a state from before the record, portscope-shaped ones) are claimed."""

from __future__ import annotations

import pytest

from portscope.core.publish.model import State
from portscope.core.publish.nft_tables import is_empty
from portscope.core.publish.owned import Owned, claim, taken_names
from portscope.core.publish.render import JUMP_TAG
from portscope.core.publish.saved import parse_save

TAG = '-m comment --comment "portscope:ps-1a2b3c4d"'
DUMP = f"""*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:PORTSCOPE-MINE - [0:0]
:PORTSCOPE-FORWARD - [0:0]
-A INPUT -j PORTSCOPE-MINE
-A FORWARD {JUMP_TAG} -j PORTSCOPE-FORWARD
-A PORTSCOPE-MINE -s 10.9.9.9/32 -j DROP
-A PORTSCOPE-FORWARD -d 172.17.0.2/32 -p tcp -m tcp --dport 80 {TAG} -j ACCEPT
COMMIT
"""


def test_only_recorded_chains_are_claimed_and_look_alikes_are_reported() -> None:
    owned = Owned({"chain iptables-nft ipv4 filter PORTSCOPE-FORWARD"})
    mine, foreign = claim(parse_save(DUMP), owned, "iptables-nft", "ipv4")
    assert list(mine["filter"].chains) == ["PORTSCOPE-FORWARD"]
    assert [j.chain for j in mine["filter"].jumps] == ["FORWARD"]  # the INPUT jump into the foreign chain is not ours
    assert foreign == ["ipv4 filter chain PORTSCOPE-MINE"]


def test_nothing_recorded_claims_nothing_and_a_taken_name_is_found() -> None:
    dump = parse_save(DUMP)
    mine, foreign = claim(dump, Owned(), "iptables-nft", "ipv4")
    assert not mine["filter"].chains and not mine["filter"].jumps and len(foreign) == 2
    wanted = parse_save("*filter\n:PORTSCOPE-FORWARD - [0:0]\nCOMMIT\n")
    assert taken_names(wanted, dump, mine) == ["filter/PORTSCOPE-FORWARD"]


def test_a_state_from_before_the_record_adopts_only_portscope_shaped_chains() -> None:
    mine, foreign = claim(parse_save(DUMP), Owned(adopt=True), "iptables-nft", "ipv4")
    assert list(mine["filter"].chains) == ["PORTSCOPE-FORWARD"] and foreign == ["ipv4 filter chain PORTSCOPE-MINE"]
    untagged = DUMP.replace(f" {TAG}", "")
    mine, _ = claim(parse_save(untagged), Owned(adopt=True), "iptables-nft", "ipv4")
    assert not mine["filter"].chains, "a chain with an untagged rule is not adopted"


def test_state_extras_round_trip_and_old_states_load() -> None:
    s = State(
        created=["chain iptables-nft ipv4 nat PORTSCOPE", "table iptables-nft ipv6 nat"], localnet={"docker0": "0"}
    )
    assert State.parse_extras(s.extras()) == {"created": sorted(s.created or []), "localnet": {"docker0": "0"}}
    assert State.parse_extras({}) == {} and State().extras() == {}


@pytest.mark.parametrize(
    "doc",
    [{"created": "x"}, {"created": ["chain iptables-nft ipv4 nat INPUT"]}, {"created": ["rm -rf /"]},
     {"localnet": {"docker0": "2"}}, {"localnet": {"a b": "0"}}, {"localnet": []}],
)  # fmt: skip
def test_malformed_extras_are_refused(doc: dict) -> None:
    with pytest.raises(ValueError):
        State.parse_extras(doc)


def test_an_iptables_nft_table_is_empty_only_with_bare_base_chains() -> None:
    bare = (
        "table ip raw {\n\tchain PREROUTING {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\t}\n}\n"
    )
    assert is_empty(bare)
    assert not is_empty(bare.replace("policy accept;\n", "policy accept;\n\t\tcounter\n"))
    assert not is_empty(bare.replace("PREROUTING", "MINE"))
