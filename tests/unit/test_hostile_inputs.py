"""Hostile input files (issue 11, items 7, `--snapshot` types and made-up bindings from `--rules`).

Every bad file ends with its documented exit code and one line naming what is wrong: `capture -o`
writes regular files only (exit 2 otherwise), a capture with a wrong field names it (exit 2), and a
rule dump that no tool prints is refused naming its line (exit 3), never read as a made-up binding.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portscope.core.errors import ParseError, SnapshotError
from portscope.core.model import (
    Container,
    ContainerNetwork,
    EngineInfo,
    HostFacts,
    PortMapping,
    PortRange,
    ProxyArgs,
    Snapshot,
    Socket,
)
from portscope.core.rules.iptables_text import parse_iptables_text
from portscope.core.rules.nft_json import parse_nft_json
from portscope.core.rules.nft_text import parse_nft_text
from portscope.core.snapshot import read_capture, snapshot_to_dict, write_capture

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def portscope(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        cwd=cwd or REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("portscope: "), proc.stderr
    assert "internal error" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def sample_snapshot() -> Snapshot:
    host = HostFacts(
        hostname="h",
        kernel="6.1",
        is_root=True,
        addresses=("10.0.0.1", "fe80::1%eth0"),
        ephemeral_range=PortRange(32768, 60999),
        reserved_ports=(PortRange(8000, 8010),),
        networks=(("eth0", "10.0.0.1/24"),),
        route_localnet=("docker0",),
    )
    proxy = ProxyArgs("tcp", "0.0.0.0", 8080, "172.17.0.2", 80)
    web = Container(
        id="a" * 64,
        name="web",
        image="nginx",
        state="running",
        network_mode="bridge",
        networks=(ContainerNetwork("bridge", "172.17.0.2", None),),
        requested=(PortMapping(80, "tcp", "", "8080"),),
        in_force=(PortMapping(80, "tcp", "0.0.0.0", "8080"),),
    )
    return Snapshot(
        host=host,
        taken_at="2026-01-01T00:00:00+00:00",
        sockets=[Socket("ipv4", "tcp", "0.0.0.0", 8080, 12, "docker-proxy", ("docker-proxy",), proxy)],
        engine=EngineInfo(reachable=True, endpoint="unix:///x", version="24", name="Docker Engine"),
        containers=[web],
    )


# ------------------------------------------------------------------------------------------ capture -o


def test_capture_to_a_character_device_is_refused(tmp_path: Path) -> None:
    dump = str(FIXTURES / "iptables" / "nft-v4.save")
    before = os.lstat("/dev/null")
    proc = portscope("capture", "--rules", dump, "-o", "/dev/null")
    one_line(proc, 2, "/dev/null is not a regular file")
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("", "name is empty"),
        ("missing/x.json", "does not exist"),
        ("adir", "is a folder"),
        ("adir/", "is a folder"),
        ("link.json", "symbolic link"),
        ("fifo", "not a regular file"),
    ],
)
def test_capture_refuses_what_is_not_a_file(tmp_path: Path, target: str, words: str) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "real.json").write_text("keep me\n")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    os.mkfifo(tmp_path / "fifo")
    listing = sorted(os.listdir(tmp_path))
    proc = portscope("capture", "--rules", str(FIXTURES / "iptables" / "nft-v4.save"), "-o", target, cwd=tmp_path)
    one_line(proc, 2, words)
    assert sorted(os.listdir(tmp_path)) == listing
    assert (tmp_path / "real.json").read_text() == "keep me\n"
    assert os.listdir(tmp_path / "adir") == []


def test_capture_replaces_a_regular_file_atomically(tmp_path: Path) -> None:
    out = tmp_path / "cap.json"
    out.write_text("old")
    write_capture(sample_snapshot(), str(out))
    assert json.loads(out.read_text())["schema"] == "portscope.capture/1"
    assert os.listdir(tmp_path) == ["cap.json"]


# ------------------------------------------------------------------------------------- --snapshot fields


def capture_doc() -> dict:
    return json.loads(json.dumps(snapshot_to_dict(sample_snapshot())))


def test_a_whole_capture_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write_capture(sample_snapshot(), str(path))
    back = read_capture(str(path))
    assert snapshot_to_dict(back) == snapshot_to_dict(sample_snapshot())


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        (("containers", 0, "networks", 0, "ipv4"), 5, "containers[0].networks[0].ipv4"),
        (("sockets", 0, "address"), 1234, "sockets[0].address"),
        (("sockets", 0, "port"), "8080", "sockets[0].port"),
        (("sockets", 0, "proxy", "host_port"), "80", "sockets[0].proxy.host_port"),
        (("host", "networks", 0, 1), "10.0.0.300/24", "host.networks[0][1]"),
        (("host", "networks", 0, 1), "not-a-cidr", "host.networks[0][1]"),
        (("host", "addresses", 0), "１.２.３.４", "host.addresses[0]"),
        (("host", "ephemeral_range", "first"), "1", "host.ephemeral_range.first"),
        (("host", "is_root"), "yes", "host.is_root"),
        (("containers", 0, "in_force", 0, "host_port"), 8080, "containers[0].in_force[0].host_port"),
        (("containers", 0, "requested", 0, "container_port"), 70000, "containers[0].requested[0].container_port"),
        (("engine", "reachable"), None, "engine.reachable"),
        (("taken_at",), 0, "taken_at"),
        (("warnings",), "x", "warnings"),
        (("sources",), [{"backend": "dump"}], "sources[0].family"),
    ],
)
def test_a_wrong_field_in_a_capture_is_named(tmp_path: Path, where: tuple, value: object, field: str) -> None:
    doc = capture_doc()
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SnapshotError) as err:
        read_capture(str(path))
    assert field in str(err.value) and "\n" not in str(err.value)
    one_line(portscope("list", "--snapshot", str(path)), 2, field)


def test_a_capture_nested_too_deep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    one_line(portscope("list", "--snapshot", str(path)), 2, "not a portscope capture")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=12,
)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON document."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += _paths(child, (*prefix, i))
    return out


CAPTURE_PATHS = [p for p in _paths(capture_doc()) if p != ("schema",)]


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(CAPTURE_PATHS), value=JSON)
def test_any_value_anywhere_in_a_capture_loads_or_is_named(tmp_path: Path, where: tuple, value: object) -> None:
    doc = capture_doc()
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    try:
        snap = read_capture(str(path))
    except SnapshotError as exc:
        assert "\n" not in str(exc) and "damaged capture" in str(exc)
    else:
        from portscope.core.inventory import build_inventory

        build_inventory(snap)  # what loads is whole enough to be used


# ------------------------------------------------------------------------ --rules: no made-up bindings


NFT_TABLE = (
    "table {family} nat {{\n\tchain PREROUTING {{\n"
    "\t\ttype nat hook prerouting priority dstnat;\n\t\t{rule}\n\t}}\n}}\n"
)
SAVE = "*nat\n:PREROUTING ACCEPT [0:0]\n{rule}\nCOMMIT\n"


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        (
            "target.nft",
            NFT_TABLE.format(family="ip", rule="tcp dport 8080 dnat to 12345:x"),
            "target.nft:4: dnat target",
        ),
        (
            "wide.nft",
            NFT_TABLE.format(family="ip", rule="tcp dport 8080 dnat to \uff11\uff17\uff12.17.0.2:80"),
            "wide.nft:4:",
        ),
        (
            "wide.save",
            SAVE.format(rule="-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination \uff11.2.3.4:80"),
            "wide.save:3: not an IP address",
        ),
        (
            "wideport.save",
            SAVE.format(rule="-A PREROUTING -p tcp -m tcp --dport \uff18\uff10 -j DNAT --to-destination 1.2.3.4:80"),
            "wideport.save:3:",
        ),
        ("v6.nft", NFT_TABLE.format(family="ip6", rule="tcp dport 8080 dnat to 172.17.0.2:80"), "v6.nft:4:"),
        (
            "v6.save",
            "# Generated by ip6tables-save v1.8.9\n"
            + SAVE.format(rule="-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"),
            "v6.save:4: 172.17.0.2 is not an ipv6 address",
        ),
    ],
)
def test_an_impossible_rule_is_refused_naming_its_line(tmp_path: Path, name: str, text: str, words: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    proc = portscope("list", "--json", "--rules", name, cwd=tmp_path)
    one_line(proc, 3, words)
    assert proc.stdout == ""


SAVE_TOKENS = [
    "-A", "PREROUTING", "DOCKER", "-p", "tcp", "udp", "-m", "tcp", "--dport", "80", "8080:8090", "-d", "-s",
    "10.0.0.0/8", "1.2.3.4", "fd00::1", "!", "-i", "docker0", "-j", "DNAT", "REDIRECT", "RETURN", "--to-destination",
    "--to-ports", "1.2.3.4:80", "[fd00::2]:80", "12345:x", "\uff11.2.3.4", "-m", "comment", "--comment", '"a b"',
    "-g", "multiport", "--dports", "80,443", "addrtype", "--dst-type", "LOCAL", "-N", ":", "*nat", "COMMIT",
]  # fmt: skip
LINE = st.lists(st.sampled_from(SAVE_TOKENS) | st.text(max_size=8), max_size=12).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(lines=st.lists(LINE, min_size=1, max_size=6), six=st.booleans())
def test_garbage_iptables_lines_parse_or_raise_parse_error(lines: list[str], six: bool) -> None:
    text = "*nat\n" + "\n".join(f"-A PREROUTING {line}" if i % 2 else line for i, line in enumerate(lines))
    try:
        tables = parse_iptables_text(text, family="ipv6" if six else None)
    except ParseError as exc:
        assert exc.line is not None and "\n" not in str(exc)
        return
    for table in tables:
        for chain in table.chains.values():
            for rule in chain.rules:
                if rule.nat is not None and rule.nat.address:
                    assert rule.nat.address.isascii()
                    assert (":" in rule.nat.address) == (table.family == "ipv6")


NFT_TOKENS = [
    "tcp", "udp", "dport", "8080", "80-90", "dnat", "snat", "redirect", "to", "ip", "ip6", "daddr", "saddr",
    "1.2.3.4", "1.2.3.4:80", "[fd00::2]:80", "fd00::2", "12345:x", "\uff11.2.3.4", ":80", "map", "{", "}", ":",
    "iifname", '"docker0"', "!=", "counter", "jump", "accept", "comment", '"x"', "masquerade", "meta", "l4proto",
]  # fmt: skip
NFT_LINE = st.lists(st.sampled_from(NFT_TOKENS) | st.text(max_size=6), max_size=10).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(line=NFT_LINE, family=st.sampled_from(["ip", "ip6", "inet"]))
def test_garbage_nft_rules_parse_or_raise_parse_error(line: str, family: str) -> None:
    text = "table {} t {{\n\tchain c {{\n\t\t{}\n\t}}\n}}\n".format(family, line.replace("\n", " "))
    try:
        tables = parse_nft_text(text)
    except ParseError as exc:
        assert "\n" not in str(exc)
        return
    for table in tables:
        for chain in table.chains.values():
            for rule in chain.rules:
                if rule.nat is not None and rule.nat.address:
                    assert rule.nat.address.isascii()
                    if table.family != "inet":
                        assert (":" in rule.nat.address) == (table.family == "ipv6")


@settings(max_examples=300, deadline=None)
@given(addr=st.text(max_size=16) | st.sampled_from(["12345", "1.2.3.4/8", "\uff11.2.3.4", "fd00::2", "::"]))
def test_garbage_nft_json_targets_parse_or_raise_parse_error(addr: str) -> None:
    rule = {"family": "ip", "table": "t", "chain": "c", "expr": [{"dnat": {"addr": addr, "port": 80}}]}
    doc = {
        "nftables": [
            {"table": {"family": "ip", "name": "t"}},
            {"chain": {"family": "ip", "table": "t", "name": "c", "type": "nat", "hook": "prerouting", "prio": -100}},
            {"rule": rule},
        ]
    }
    try:
        tables = parse_nft_json(json.dumps(doc))
    except ParseError as exc:
        assert "\n" not in str(exc)
        return
    for table in tables:
        for r in table.chains["c"].rules:
            if r.nat is not None and r.nat.address:
                assert r.nat.address.isascii() and ":" not in r.nat.address


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "r.save",
            SAVE.format(rule="-A PREROUTING -p tcp -m tcp --dport 81 -j DNAT --to-destination 172.17.0.2-172.17.0.4:80")
            + "*nat\n:POSTROUTING ACCEPT [0:0]\n"
            + "-A POSTROUTING -j SNAT --to-source 10.0.0.1-10.0.0.5:1024-65535\nCOMMIT\n",
        ),
        ("r.nft", NFT_TABLE.format(family="ip", rule="tcp dport 81 dnat to 172.17.0.2-172.17.0.4:80")),
    ],
)
def test_address_ranges_the_tools_print_are_still_read(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    proc = portscope("list", "--json", "--rules", name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [b["id"] for b in json.loads(proc.stdout)["bindings"]] == ["ipv4/tcp/0.0.0.0:81->172.17.0.2-172.17.0.4:80"]
