"""The native nftables backend without a kernel: rendering, batches, reading a listing back, Docker's mark rule."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.errors import ToolError
from portscope.core.model import Table
from portscope.core.publish.backend import Backend, Detection, choose_backend, resolve_backend
from portscope.core.publish.errors import InputError, UnsupportedError
from portscope.core.publish.model import State, StoredBinding, binding_id
from portscope.core.publish.nft_commit import _docker_table, build_batch
from portscope.core.publish.nft_docker import accept_mark, check_forwarding, drops_unpublished
from portscope.core.publish.nft_render import CHAINS, Mark, render_nft, table_text
from portscope.core.publish.nft_run import nft_error
from portscope.core.publish.nft_saved import differences, parse_listing
from portscope.core.publish.render import Placed
from portscope.core.publish.validate import PROTOCOLS
from portscope.core.rules.nft_json import parse_nft_json
from portscope.core.rules.nft_text import parse_nft_text

COMMENT = 'comment "portscope:{}"'


def binding(
    kind: str = "publish", host_ip: str = "0.0.0.0", host_port: int = 8080, proto: str = "tcp", cport: int = 80
) -> StoredBinding:
    return StoredBinding(
        id=binding_id(kind, host_ip, host_port, proto),  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        host_ip=host_ip,
        host_port=host_port,
        protocol=proto,
        container_port=cport,
    )


def test_publish_renders_every_chain_of_the_iptables_renderer() -> None:
    b = binding()
    view = render_nft([Placed(b, "172.18.0.2", "br0")], "ipv4")
    c = COMMENT.format(b.id)
    dnat = f"ip daddr != 127.0.0.0/8 tcp dport 8080 fib daddr type local dnat to 172.18.0.2:80 {c}"
    assert view == {
        "prerouting": [CHAINS["prerouting"], dnat],
        "output": [CHAINS["output"], dnat],
        "postrouting": [CHAINS["postrouting"], f"ip saddr 172.18.0.2 ip daddr 172.18.0.2 tcp dport 80 masquerade {c}"],
        "forward": [
            CHAINS["forward"],
            f"ip daddr 172.18.0.2 tcp dport 80 ct status dnat ct original proto-dst 8080 accept {c}",
        ],
    }
    assert render_nft([Placed(b, "172.18.0.2")], "ipv6") == {}


def test_specific_address_and_ipv6() -> None:
    v4 = render_nft([Placed(binding(host_ip="10.0.0.5", proto="udp"), "172.18.0.2")], "ipv4")
    assert v4["prerouting"][1].startswith("ip daddr 10.0.0.5 udp dport 8080 fib daddr type local dnat to 172.18.0.2:80")
    v6 = render_nft([Placed(binding(host_ip="::"), "fd00::2")], "ipv6")
    assert v6["prerouting"][1].startswith("ip6 daddr != ::1 tcp dport 8080 fib daddr type local dnat to [fd00::2]:80")
    assert v6["postrouting"][1].startswith("ip6 saddr fd00::2 ip6 daddr fd00::2 tcp dport 80 masquerade")


def test_loopback_publish_is_output_only_with_the_raw_drop() -> None:
    b = binding(host_ip="127.0.0.1", host_port=9001)
    view = render_nft([Placed(b, "172.18.0.2", "br0")], "ipv4")
    c = COMMENT.format(b.id)
    assert set(view) == {"output", "postrouting", "raw"}
    assert view["output"][1] == f"ip daddr 127.0.0.1 tcp dport 9001 dnat to 172.18.0.2:80 {c}"
    assert view["postrouting"][1] == f"ip saddr 127.0.0.0/8 ip daddr 172.18.0.2 tcp dport 80 masquerade {c}"
    assert view["raw"][1] == f'ip daddr 127.0.0.1 iifname != "lo" tcp dport 9001 drop {c}'


def test_block_drops_first_by_conntrack_original_destination() -> None:
    pub, blk = binding(host_port=8081), binding("block", host_ip="10.0.0.5", host_port=8080)
    view = render_nft([Placed(pub, "172.18.0.2", "br0"), Placed(blk, "172.18.0.3", "br0")], "ipv4")
    assert view["forward"][1] == (
        'ip daddr 172.18.0.3 iifname != "br0" tcp dport 80 ct original proto-dst 8080 '
        f"ct original ip daddr 10.0.0.5 drop {COMMENT.format(blk.id)}"
    )
    assert view["forward"][2].endswith(f"accept {COMMENT.format(pub.id)}")
    assert "prerouting" in view and len(view["prerouting"]) == 2  # the block adds no DNAT


@pytest.mark.parametrize(
    ("mark", "text"),
    [
        (Mark(2), "meta mark set 0x00000002"),
        (Mark(0x10000000, 0x10000000), "meta mark set meta mark | 0x10000000"),
        (Mark(2, 3), "meta mark set meta mark & 0xfffffffe | 0x00000002"),
        (Mark(0, 3), "meta mark set meta mark & 0xfffffffc"),
    ],
)
def test_mark_statement_is_what_nft_prints(mark: Mark, text: str) -> None:
    """The forms nft 1.0.6 printed back for these statements (checked against the real tool)."""
    assert mark.statement() == text
    view = render_nft([Placed(binding(), "172.18.0.2", "br0")], "ipv4", mark)
    assert f"ct original proto-dst 8080 {text} accept" in view["forward"][1]


def test_mark_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        Mark(1 << 32)
    with pytest.raises(ValueError):
        Mark(1, -1)


ids = st.from_regex(r"ps-[0-9a-f]{8}", fullmatch=True)
ports = st.integers(1, 65535)
v4_targets = st.ip_addresses(v=4).filter(lambda a: not (a.is_unspecified or a.is_multicast or a.is_loopback))
v6_targets = st.ip_addresses(v=6).filter(lambda a: not (a.is_unspecified or a.is_multicast or a.is_loopback))
hosts4 = st.one_of(st.just("0.0.0.0"), st.just("127.0.0.1"), st.ip_addresses(v=4).map(str))
bridges = st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_-]{0,14}", fullmatch=True))


@st.composite
def placed_bindings(draw: Any) -> list[Placed]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        v6 = draw(st.booleans())
        kind = draw(st.sampled_from(["publish", "block"]))
        host = "::" if v6 else draw(hosts4)
        b = StoredBinding(
            id=draw(ids), kind=kind, host_ip=host, host_port=draw(ports), protocol=draw(st.sampled_from(PROTOCOLS)),
            container_port=draw(ports),
        )  # fmt: skip
        out.append(Placed(b, str(draw(v6_targets if v6 else v4_targets)), draw(bridges)))
    return out


@given(placed_bindings(), st.one_of(st.none(), st.builds(Mark, st.integers(0, 2**32 - 1))))
def test_a_listing_of_the_rendered_table_reads_back_the_same(placed: list[Placed], mark: Mark | None) -> None:
    for family in ("ipv4", "ipv6"):
        view = render_nft(placed, family, mark)  # type: ignore[arg-type]
        assert parse_listing(table_text(family, view)) == view  # type: ignore[arg-type]
        assert differences(family, view, view if view else None) == []  # type: ignore[arg-type]
        for lines in view.values():
            for line in lines[1:]:
                assert line.count('"portscope:ps-') == 1 and line.isprintable() and ";" not in line


@given(st.text(min_size=1, max_size=20).filter(lambda t: not t.startswith("ps-") or len(t) != 11))
def test_only_our_ids_reach_a_comment(text: str) -> None:
    b = binding()
    b.id = text
    with pytest.raises((InputError, ValueError)):
        render_nft([Placed(b, "172.18.0.2")], "ipv4")


@given(st.text(min_size=1, max_size=20).filter(lambda t: t not in PROTOCOLS))
def test_only_known_protocols(text: str) -> None:
    with pytest.raises(ValueError):
        render_nft([Placed(binding(proto=text), "172.18.0.2")], "ipv4")


@given(st.text(min_size=1, max_size=30).filter(lambda t: t.strip() and not _is_ip(t)))
def test_addresses_must_parse(text: str) -> None:
    with pytest.raises(ValueError):
        render_nft([Placed(binding(), text)], "ipv4")


@given(st.text(max_size=8), st.sampled_from(['"', " ", ";", "}", "\n", "\\", "$"]), st.text(max_size=6))
def test_interface_names_are_checked(head: str, bad: str, tail: str) -> None:
    """Whatever could end the quoted name or the statement is refused (and names longer than IFNAMSIZ)."""
    for name in (head + bad + tail, "a" * 16):
        with pytest.raises(ValueError):
            render_nft([Placed(binding("block"), "172.18.0.2", name)], "ipv4")


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=65536)))
def test_ports_out_of_range_are_refused(port: int) -> None:
    with pytest.raises(InputError):
        render_nft([Placed(binding(cport=port), "172.18.0.2")], "ipv4")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def test_family_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        render_nft([Placed(binding(), "fd00::2")], "ipv4")


# --------------------------------------------------------------------------- batches


def test_batch_replaces_each_family_table_whole_in_one_text() -> None:
    v4 = render_nft([Placed(binding(), "172.18.0.2")], "ipv4")
    batch = build_batch({"ipv4": v4, "ipv6": {}}, {"ipv4": None, "ipv6": {"forward": [CHAINS["forward"], "x"]}})
    lines = batch.splitlines()
    assert lines[:3] == ["table ip portscope {}", "delete table ip portscope", "table ip portscope {"]
    assert "table ip6 portscope {}" in lines and "delete table ip6 portscope" in lines
    assert "table ip6 portscope {" not in lines  # nothing wanted for IPv6: the table goes
    assert all("docker" not in line and "inet" not in line for line in lines)


def test_batch_is_empty_when_nothing_changes_and_carries_injected_lines() -> None:
    v4 = render_nft([Placed(binding(), "172.18.0.2")], "ipv4")
    assert build_batch({"ipv4": v4, "ipv6": {}}, {"ipv4": v4, "ipv6": None}) == ""
    assert build_batch({"ipv4": {}, "ipv6": {}}, {"ipv4": None, "ipv6": None}) == ""
    bad = "add rule ip portscope forward tcp dport 1 dnat to 10.9.9.9"
    assert build_batch({"ipv4": v4}, {"ipv4": v4, "ipv6": None}, [bad]).splitlines()[-1] == bad


def test_differences_name_what_is_missing_and_unexpected() -> None:
    b = binding()
    view = render_nft([Placed(b, "172.18.0.2")], "ipv4")
    assert differences("ipv4", view, None) == ["missing table ip portscope"]
    assert differences("ipv4", {}, view) == ["unexpected table ip portscope (no bindings of ipv4)"]
    moved = render_nft([Placed(b, "172.18.0.9")], "ipv4")
    drift = differences("ipv4", view, moved)
    assert any(line.startswith("missing: ip portscope/prerouting: ") for line in drift)
    assert any(line.startswith("unexpected: ip portscope/prerouting: ") for line in drift)
    two = render_nft([Placed(binding(host_port=1), "172.18.0.2"), Placed(b, "172.18.0.2")], "ipv4")
    swapped = {k: [v[0], *reversed(v[1:])] for k, v in two.items()}
    assert "rules out of order (or repeated) in ip portscope/prerouting" in differences("ipv4", two, swapped)


def test_nft_errors_become_one_line() -> None:
    text = (
        "/dev/stdin:40:1-59: Error: Could not process rule: Operation not supported\n"
        "add rule ip portscope forward tcp dport 1 dnat to 10.9.9.9\n^^^^^^^^^^\n"
    )
    assert nft_error(text) == "Could not process rule: Operation not supported"


# --------------------------------------------------------------------------- Docker's nftables rules

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nft"
MARKED = "meta mark & 0x00000003 == 0x00000002 counter packets 0 bytes 0 accept"
ELSEWHERE = "ip daddr 172.18.0.9 counter packets 0 bytes 0 drop"


def docker_table(bridge: str = "br0", *extra: str, lazy: bool = True) -> Table:
    """Docker 29's filter-forward-in chain for `bridge` (layout as in moby's nftables backend), as nft prints it
    and a read parses it, with `extra` rules first."""
    lines = [
        "table ip docker-bridges {",
        f"\tchain filter-forward-in__{bridge} {{",
        "\t\tct state established,related counter packets 0 bytes 0 accept",
        *(f"\t\t{line}" for line in extra),
        f'\t\tiifname "{bridge}" counter packets 0 bytes 0 accept comment "ICC"',
        "\t\tip daddr 172.18.0.7 tcp dport 443 counter packets 0 bytes 0 accept",
        "\t\tip daddr 172.18.0.5 tcp dport 80 counter packets 0 bytes 0 accept",
        '\t\tcounter packets 0 bytes 0 drop comment "UNPUBLISHED PORT DROP"',
        "\t}",
        "}",
    ]
    (table,) = parse_nft_text("\n".join(lines), lazy=lazy)
    return table


def test_docker_mark_rule_is_found_with_and_without_mask() -> None:
    assert accept_mark(docker_table("br0", "meta mark 0x00000002 counter packets 0 bytes 0 accept")) == Mark(2)
    assert accept_mark(docker_table("br0", MARKED)) == Mark(2, 3)
    assert accept_mark(docker_table()) is None
    assert accept_mark(None) is None
    # An accept that asks more of a packet than its mark is not the daemon's `bridge-accept-fwmark` rule.
    assert accept_mark(docker_table("br0", "meta mark 0x00000002 ip saddr 10.0.0.0/8 accept")) is None
    assert accept_mark(docker_table("br0", "meta mark != 0x00000002 accept")) is None


def test_unpublished_port_is_dropped_unless_docker_accepts_it() -> None:
    table = docker_table()
    assert drops_unpublished(table, "br0", "172.18.0.2", "tcp", 80)
    assert not drops_unpublished(table, "br0", "172.18.0.5", "tcp", 80)  # Docker published it
    assert drops_unpublished(table, "br0", "172.18.0.5", "udp", 80)
    assert not drops_unpublished(table, "docker0", "172.18.0.2", "tcp", 80)  # no chain for that bridge
    # A drop of another port cannot drop the target's packets.
    ssh = "table ip docker-bridges {\n\tchain filter-forward-in__br0 {\n\t\ttcp dport 22 drop\n\t}\n}"
    for lazy in (True, False):
        (only_ssh,) = parse_nft_text(ssh, lazy=lazy)
        assert not drops_unpublished(only_ssh, "br0", "172.18.0.2", "tcp", 80)
        assert drops_unpublished(only_ssh, "br0", "172.18.0.2", "tcp", 22)


def test_without_the_mark_rule_a_dropped_target_is_refused_in_one_line() -> None:
    placed = [Placed(binding(), "172.18.0.2", "br0")]
    with pytest.raises(UnsupportedError) as err:
        check_forwarding(docker_table(), placed, "ipv4")
    text = str(err.value)
    assert err.value.exit_code == 6 and "bridge-accept-fwmark" in text and "\n" not in text
    assert "nothing was changed" in text


def test_with_the_mark_rule_the_mark_is_set_and_nothing_is_refused() -> None:
    placed = [Placed(binding(), "172.18.0.2", "br0")]
    mark = check_forwarding(docker_table("br0", MARKED), placed, "ipv4")
    assert mark == Mark(2, 3)
    assert "meta mark set meta mark & 0xfffffffe | 0x00000002 accept" in render_nft(placed, "ipv4", mark)["forward"][1]


def test_no_refusal_when_docker_accepts_or_is_absent_or_for_loopback() -> None:
    assert check_forwarding(docker_table(), [Placed(binding(), "172.18.0.5", "br0")], "ipv4") is None
    assert check_forwarding(None, [Placed(binding(), "172.18.0.2", "br0")], "ipv4") is None
    loop = [Placed(binding(host_ip="127.0.0.1"), "172.18.0.2", "br0")]
    assert check_forwarding(docker_table(), loop, "ipv4") is None
    blocked = [Placed(binding("block"), "172.18.0.2", "br0")]
    assert check_forwarding(docker_table(), blocked, "ipv4") is None


def test_a_docker_table_nft_lists_as_something_else_than_json_is_one_line() -> None:
    with pytest.raises(ToolError) as err:
        _docker_table('{"nftables": [', "ipv4")
    assert "nftables version" in str(err.value) and "\n" not in str(err.value)
    assert _docker_table(None, "ipv4") is None


def _outcome(table: Table | None, placed: list[Placed]) -> object:
    try:
        return check_forwarding(table, placed, "ipv4")
    except UnsupportedError as exc:
        return str(exc)


@pytest.mark.parametrize(
    "extra", [(), (MARKED,), (ELSEWHERE,), (ELSEWHERE, MARKED)], ids=["plain", "mark", "drop", "both"]
)
@pytest.mark.parametrize("target", ["172.18.0.2", "172.18.0.5", "172.18.0.9"])
def test_the_forward_check_parses_only_the_rules_that_can_see_the_port(extra: tuple[str, ...], target: str) -> None:
    """On a table as a read leaves it (rules untranslated), the check parses only the rules that can see the
    target's port, and says what it says on the table parsed whole."""
    placed = [Placed(binding(), target, "br0")]
    table = docker_table("br0", *extra)
    assert _outcome(table, placed) == _outcome(docker_table("br0", *extra, lazy=False), placed)
    assert table.chains["filter-forward-in__br0"].has_pending  # Docker's accept of port 443 was never parsed


@pytest.mark.parametrize("form", ["nft", "json"])
def test_the_forward_check_on_a_real_docker_table(form: str) -> None:
    """On Docker 29's table as nft prints it, as text or JSON, read lazily: the check's outcome is the one on
    the table parsed whole."""
    text = (FIXTURES / f"docker29.{form}").read_text()
    parse = parse_nft_text if form == "nft" else parse_nft_json

    def docker(lazy: bool) -> Table:
        return next(t for t in parse(text, lazy=lazy) if t.name == "docker-bridges" and t.family == "ipv4")

    outcomes = set()
    for target in ("172.17.0.2", "192.0.2.2", "10.0.0.1"):
        for bridge in ("docker0", "bridge1"):
            for port, protocol in ((80, "tcp"), (53, "udp"), (53, "tcp"), (8080, "tcp")):
                placed = [Placed(binding(proto=protocol, cport=port), target, bridge)]
                outcome = _outcome(docker(lazy=True), placed)
                assert outcome == _outcome(docker(lazy=False), placed)
                outcomes.add(outcome is None)
    assert outcomes == {True, False}  # Docker accepts some targets (192.0.2.2:80/tcp and :53/udp), drops others


# --------------------------------------------------------------------------- backend choice, state, CLI


@pytest.mark.parametrize(
    ("nft", "legacy", "tables", "expected"),
    [
        ("", "", "table ip docker-bridges\ntable ip6 docker-bridges", "nftables"),
        ("", "", "table inet netavark", "nftables"),
        (":NETAVARK-HOSTPORT-DNAT - [0:0]", "", "table inet netavark", "iptables-nft"),
        (":DOCKER - [0:0]", "", "table inet netavark", "iptables-nft"),
        ("", ":NETAVARK-DN-1 - [0:0]", "table inet netavark", "iptables-nft"),
    ],
)
def test_native_nftables_is_chosen_for_docker_and_netavark(nft: str, legacy: str, tables: str, expected: str) -> None:
    assert choose_backend(nft, legacy, tables, "iptables v1.8.9 (nf_tables)") == expected


def test_explicit_and_stored_backends_win_over_detection() -> None:
    none = Detection(None, "iptables-nft")
    assert resolve_backend("nftables", "iptables-nft", none) == Backend("nftables")
    assert resolve_backend("auto", "nftables", none) == Backend("nftables")
    with pytest.raises(InputError):
        resolve_backend("pf", None, none)
    assert Backend("nftables").native and not Backend("iptables-nft").native


def test_state_keeps_the_backend(tmp_path: Any) -> None:
    from portscope.core.publish import state

    state.save(str(tmp_path), State(bindings=[binding()], backend="nftables"))
    loaded = state.load(str(tmp_path))
    assert loaded.backend == "nftables" and loaded.bindings[0].host_port == 8080


@pytest.mark.parametrize(
    "command", ["publish", "unpublish", "block", "unblock", "apply", "status", "reconcile", "watch"]
)
def test_every_publish_command_takes_backend(command: str) -> None:
    from portscope.cli.publish_cmds import add_publish_commands

    parser = argparse.ArgumentParser()
    add_publish_commands(parser.add_subparsers())
    extra = {"publish": ["web", "80"], "unpublish": ["ps-00000000"], "block": ["80"], "unblock": ["80"]}
    args = parser.parse_args([command, *extra.get(command, []), "--backend", "nftables"])
    assert args.backend == "nftables"
    with pytest.raises(SystemExit):
        parser.parse_args([command, *extra.get(command, []), "--backend", "pf"])
