"""The guard without a kernel: its rule text, validation of what the host hands it, batches and ownership.

The guard's behaviour with real packets is in tests/integration/test_publish_guard.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import replace
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.model import EngineInfo, HostFacts, Snapshot
from portscope.core.publish.backend import Backend
from portscope.core.publish.errors import UnsupportedError
from portscope.core.publish.guard import (
    CHAINS,
    GUARD_MARK,
    batch_lines,
    bridge_rule,
    bridge_view,
    guarded,
    iptables_mark_rule,
    nft_mark_rule,
    table_text,
)
from portscope.core.publish.guard_io import claim, numeric_oif, refuse_foreign
from portscope.core.publish.model import State
from portscope.core.publish.nft_commit import build_batch
from portscope.core.publish.nft_render import render_nft
from portscope.core.publish.owned import BRIDGE_KEY, Owned
from portscope.core.publish.render import MARK, Placed, render
from portscope.core.publish.validate import PROTOCOLS
from portscope.core.publish.veth import check_ifindex, check_netns_path, namespace_path, peer_index
from portscope.core.publish.world import World
from tests.unit.test_publish_rules import publish

C = 'comment "portscope:{}"'


#: A stored publish of web on 9400, with a full container id.
binding = partial(publish, host_port=9400, container_id="c" * 64)


def test_a_guarded_binding_renders_the_bridge_drop_and_the_marks() -> None:
    b = binding()
    p = Placed(b, "172.17.0.2", "docker0", link=23)
    mark = f"0x{GUARD_MARK:08x}"
    assert bridge_rule(p) == (
        f"ip daddr 172.17.0.2 tcp dport 80 meta mark & {mark} == {mark} oif != 23 drop {C.format(b.id)}"
    )
    assert iptables_mark_rule(p) == (
        "-d 172.17.0.2/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT --ctorigdstport 9400 "
        f'-m comment --comment "portscope:{b.id}" -j MARK --set-xmark 0x200000/0x200000'
    )
    assert nft_mark_rule(p) == (
        "ip daddr 172.17.0.2 tcp dport 80 ct status dnat ct original proto-dst 9400 "
        f"meta mark set meta mark | 0x00200000 {C.format(b.id)}"
    )
    assert bridge_view([p]) == {name: [decl, bridge_rule(p)] for name, decl in CHAINS.items()}


def test_ipv6_uses_ip6_and_a_128_prefix() -> None:
    p = Placed(binding(host_ip="::", proto="udp", cport=53), "fd00::2", "docker0", link=7)
    assert bridge_rule(p).startswith("ip6 daddr fd00::2 udp dport 53 ")
    assert iptables_mark_rule(p).startswith("-d fd00::2/128 -p udp -m udp --dport 53 ")
    assert nft_mark_rule(p).startswith("ip6 daddr fd00::2 udp dport 53 ct status dnat ")


def test_only_bindings_with_a_veth_are_guarded_and_marked() -> None:
    plain = Placed(binding(host_port=9401), "172.17.0.3", "docker0")
    covered = Placed(binding(), "172.17.0.2", "docker0", link=23)
    assert guarded([plain, covered]) == [covered]
    assert bridge_view([plain]) == {}
    view = render([plain, covered], "ipv4", {})
    assert view["mangle"].chains[MARK] == [f"-A {MARK} {iptables_mark_rule(covered)}"]
    assert [j.chain for j in view["mangle"].jumps] == ["POSTROUTING"]
    assert "mangle" not in render([plain], "ipv4", {})
    assert render_nft([covered], "ipv4")["guard"][1:] == [nft_mark_rule(covered)]
    assert "guard" not in render_nft([plain], "ipv4")


@pytest.mark.parametrize("link", [0, -1, 2**31, True, "7", 1.5, None])
def test_a_bad_ifindex_never_reaches_rule_text(link: object) -> None:
    with pytest.raises(ValueError):
        bridge_rule(Placed(binding(), "172.17.0.2", "docker0", link=link))  # type: ignore[arg-type]


def test_batches_replace_the_table_whole_and_only_when_it_changes() -> None:
    p = Placed(binding(), "172.17.0.2", "docker0", link=23)
    want = bridge_view([p])
    assert batch_lines(want, want) == []
    assert batch_lines({}, None) == []
    assert batch_lines({}, want) == ["table bridge portscope {}", "delete table bridge portscope"]
    assert batch_lines(want, None) == [
        "table bridge portscope {}",
        "delete table bridge portscope",
        table_text(want).rstrip("\n"),
    ]
    assert batch_lines({}, {}) == ["table bridge portscope {}", "delete table bridge portscope"]  # an empty table
    lines = batch_lines(want, None)
    batch = build_batch({}, {}, bridge=lines)
    assert batch == "\n".join(lines) + "\n"


def test_oif_names_read_back_as_indexes() -> None:
    assert numeric_oif('ip daddr 1.2.3.4 oif != "lo" drop') == "ip daddr 1.2.3.4 oif != 1 drop"
    assert numeric_oif("oif != 42 drop") == "oif != 42 drop"
    assert numeric_oif('oif != "no-such-if0" drop') == 'oif != "no-such-if0" drop'


def test_a_bridge_table_is_ours_only_when_recorded() -> None:
    p = Placed(binding(), "172.17.0.2", "docker0", link=23)
    view = bridge_view([p])
    assert claim(view, Owned()) == (None, True)
    assert claim(view, Owned({BRIDGE_KEY})) == (view, False)
    assert claim(view, Owned(adopt=True)) == (view, False)  # a state from before the record: by its tags
    foreign = {"output": [CHAINS["output"], "meta mark 0x7 counter"]}
    assert claim(foreign, Owned(adopt=True)) == (None, True)
    assert claim(None, Owned()) == (None, False)
    with pytest.raises(UnsupportedError, match="bridge portscope"):
        refuse_foreign(view)
    assert "left alone" in refuse_foreign({})
    owned = Owned()
    owned.set_bridge(True)
    assert owned.created == {BRIDGE_KEY}
    owned.set_bridge(False)
    assert owned.created == set()


def test_the_state_accepts_the_guards_keys() -> None:
    keys = [BRIDGE_KEY, "chain iptables-nft ipv4 mangle PORTSCOPE-MARK", "table iptables-nft ipv6 mangle"]
    assert State.parse_extras({"created": keys})["created"] == keys
    with pytest.raises(ValueError):
        State.parse_extras({"created": ["table nftables bridge filter"]})


LISTING = json.dumps(
    [
        {"ifindex": 1, "ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1"}]},
        {
            "ifindex": 4,
            "link_index": 23,
            "ifname": "eth0",
            "link_netnsid": 0,
            "addr_info": [{"family": "inet", "local": "172.17.0.2"}, {"family": "inet6", "local": "fd00::2"}],
        },
    ]
)


def test_the_peer_index_of_the_interface_holding_the_address() -> None:
    assert peer_index(LISTING, "172.17.0.2") == 23
    assert peer_index(LISTING, "fd00:0::2") == 23
    assert peer_index(LISTING, "172.17.0.3") is None
    assert peer_index(LISTING, "127.0.0.1") is None  # lo has no peer
    no_netns = LISTING.replace('"link_netnsid": 0, ', "")
    assert peer_index(no_netns, "172.17.0.2") is None
    assert peer_index(LISTING.replace("23", "-5"), "172.17.0.2") is None
    assert peer_index(LISTING.replace("23", '"23"'), "172.17.0.2") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@given(json_values, st.sampled_from(["172.17.0.2", "fd00::2", "not an address"]))
def test_peer_index_never_fails_on_what_ip_prints(doc: object, address: str) -> None:
    found = peer_index(json.dumps(doc), address)
    assert found is None or (type(found) is int and 0 < found < 2**31)


@given(st.text(max_size=60))
def test_peer_index_on_any_text(text: str) -> None:
    found = peer_index(text, "172.17.0.2")
    assert found is None or (type(found) is int and 0 < found < 2**31)


_PATH_OK = re.compile(r"/[A-Za-z0-9_.@:/-]{1,255}")


@given(st.text(max_size=80))
def test_only_plain_namespace_paths_pass(path: str) -> None:
    ok = _PATH_OK.fullmatch(path) is not None and ".." not in path.split("/")
    if ok:
        assert check_netns_path(path) == path
    else:
        with pytest.raises(ValueError):
            check_netns_path(path)


@pytest.mark.parametrize(
    "path", ["/var/run/docker/netns/6dc51eee194c", "/run/netns/netns-1a2b", "/proc/1234/ns/net", "/tmp/pse-x/exec/n"]
)
def test_engine_namespace_paths_pass(path: str) -> None:
    assert check_netns_path(path) == path


@pytest.mark.parametrize("path", ["", "relative/ns", "/a/../etc", "/a b", "/a\n-x", "--net=/x", None, 5])
def test_odd_namespace_paths_are_refused(path: object) -> None:
    with pytest.raises(ValueError):
        check_netns_path(path)


def test_namespace_path_from_inspect() -> None:
    key = "/var/run/docker/netns/6dc51eee194c"
    assert namespace_path({"NetworkSettings": {"SandboxKey": key}, "State": {"Pid": 7}}) == key
    assert namespace_path({"NetworkSettings": {"SandboxKey": ""}, "State": {"Pid": 7}}) == "/proc/7/ns/net"
    assert namespace_path({"NetworkSettings": {"SandboxKey": "x\n"}, "State": {"Pid": 0}}) is None
    assert namespace_path({"NetworkSettings": None, "State": {"Pid": True}}) is None
    assert namespace_path({}) is None


@given(st.integers() | st.booleans() | st.none() | st.text(max_size=5))
def test_ifindex_validation(value: object) -> None:
    ok = type(value) is int and 0 < value < 2**31
    if ok:
        assert check_ifindex(value) == value
    else:
        with pytest.raises(ValueError):
            check_ifindex(value)


addresses = st.one_of(
    st.ip_addresses(v=4, network="172.16.0.0/12").map(str), st.ip_addresses(v=6, network="fd00::/8").map(str)
)


@given(
    addresses,
    st.integers(1, 65535),
    st.integers(1, 65535),
    st.sampled_from(sorted(PROTOCOLS)),
    st.integers(1, 2**31 - 1),
)
def test_every_guard_line_is_one_of_ours(address: str, hport: int, cport: int, proto: str, link: int) -> None:
    host = "::" if ipaddress.ip_address(address).version == 6 else "0.0.0.0"
    b = binding(host_ip=host, host_port=hport, proto=proto, cport=cport)
    p = Placed(b, address, "docker0", link=link)
    ip = "ip6" if ":" in address else "ip"
    tag = re.escape(C.format(b.id))
    assert re.fullmatch(
        rf"{ip} daddr [0-9a-f.:]+ {proto} dport {cport} meta mark & 0x00200000 == 0x00200000 oif != {link} drop {tag}",
        bridge_rule(p),
    )
    text = table_text(bridge_view([p]))
    assert text.count("\n") == 10 and text.startswith("table bridge portscope {\n")
    assert "\n" not in iptables_mark_rule(p) and "\n" not in nft_mark_rule(p)


def world(endpoint: str | None, why: str | None) -> World:
    host = HostFacts(hostname="h", kernel="6", is_root=True, networks=(("docker0", "172.17.0.1/16"),))
    engine = EngineInfo(reachable=True, endpoint=endpoint)
    # `_guard_why` set: the availability check (an `nft -c` run) is already made.
    return World(Backend("iptables-nft"), Snapshot(host=host, taken_at="now", engine=engine), _guard_why=why or "")


def test_unguardable_bindings_are_named_in_one_line() -> None:
    placed = [Placed(binding(host_port=port), "172.17.0.2", "docker0") for port in (9400, 9401)]
    block = replace(binding(host_port=9402), kind="block")
    out, warnings = world("unix:///run/docker.sock", "nft is not installed").guard([*placed, Placed(block, "1.2.3.4")])
    assert [p.link for p in out] == [None, None, None]
    assert len(warnings) == 1 and warnings[0].startswith("no guard: nft is not installed: ")
    assert "unless `portscope watch` runs" in warnings[0]
    out, warnings = world("tcp://10.0.0.1:2376", None).guard(placed)  # a remote engine: no namespace to enter
    assert [p.link for p in out] == [None, None]
    ids = ", ".join(sorted(p.binding.id for p in placed))
    assert len(warnings) == 1 and warnings[0].startswith(f"{ids}: no guard (the container's veth was not found)")


def test_plain_ip_targets_need_no_guard() -> None:
    plain = Placed(replace(binding(), container_id=None, container_name=None, target_ip="10.1.2.3"), "10.1.2.3")
    assert world("unix:///run/docker.sock", "nft is not installed").guard([plain]) == ([plain], [])
