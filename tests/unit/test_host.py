"""read_host_facts against the real /proc and a /proc laid out in a temporary directory."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.host import parse_port_range, parse_reserved_ports, read_host_facts
from portscope.core.model import PortRange
from tests.sandbox import netns


def _fake_proc(root: Path, port_range: str | None, reserved: str | None) -> str:
    ipv4 = root / "sys" / "net" / "ipv4"
    ipv4.mkdir(parents=True)
    if port_range is not None:
        (ipv4 / "ip_local_port_range").write_text(port_range)
    if reserved is not None:
        (ipv4 / "ip_local_reserved_ports").write_text(reserved)
    return str(root)


def test_real_proc() -> None:
    facts = read_host_facts()
    assert facts.hostname == socket.gethostname()
    assert facts.kernel == os.uname().release
    assert facts.is_root == (os.geteuid() == 0)
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        first, last = (int(x) for x in f.read().split())
    assert facts.ephemeral_range == PortRange(first, last)
    with open("/proc/sys/net/ipv4/ip_local_reserved_ports") as f:
        assert facts.reserved_ports == parse_reserved_ports(f.read())
    assert "127.0.0.1" in facts.addresses


def test_addresses_cover_every_interface_without_scope() -> None:
    addresses = read_host_facts().addresses
    assert all("%" not in a for a in addresses)
    assert len(set(addresses)) == len(addresses)
    parsed = [ipaddress.ip_address(a) for a in addresses]  # every entry is a plain address
    assert [a.version for a in parsed] == sorted(a.version for a in parsed)
    expected = {
        a.address.partition("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    }
    assert {str(ipaddress.ip_address(a)) for a in expected} == set(addresses)


def test_injected_proc_in_kernel_format(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, "32768\t60999\n", "8080,9000-9010\n")
    facts = read_host_facts(proc)
    assert facts.ephemeral_range == PortRange(32768, 60999)
    assert facts.reserved_ports == (PortRange(8080, 8080), PortRange(9000, 9010))


def test_injected_proc_with_no_reserved_ports(tmp_path: Path) -> None:
    facts = read_host_facts(_fake_proc(tmp_path, "1024\t65535\n", "\n"))
    assert facts.ephemeral_range == PortRange(1024, 65535)
    assert facts.reserved_ports == ()


def test_missing_files(tmp_path: Path) -> None:
    facts = read_host_facts(_fake_proc(tmp_path, None, None))
    assert facts.ephemeral_range is None
    assert facts.reserved_ports == ()
    assert facts.hostname == socket.gethostname()  # the rest is still read


def test_unreadable_file(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, None, "80\n")
    (tmp_path / "sys/net/ipv4/ip_local_port_range").mkdir()  # a directory: open() fails with IsADirectoryError
    facts = read_host_facts(proc)
    assert facts.ephemeral_range is None
    assert facts.reserved_ports == (PortRange(80, 80),)


def test_parse_port_range_examples() -> None:
    assert parse_port_range("32768\t60999\n") == PortRange(32768, 60999)
    assert parse_port_range("  100 100 ") == PortRange(100, 100)
    for bad in ("", "\n", "32768\n", "1 2 3", "60999\t32768\n", "a\tb", "1\t70000", "-1\t5"):
        assert parse_port_range(bad) is None, bad


def test_parse_reserved_ports_examples() -> None:
    assert parse_reserved_ports("") == ()
    assert parse_reserved_ports("\n") == ()
    assert parse_reserved_ports("22\n") == (PortRange(22, 22),)
    assert parse_reserved_ports("8080,9000-9010,65535\n") == (
        PortRange(8080, 8080),
        PortRange(9000, 9010),
        PortRange(65535, 65535),
    )
    for bad in ("80,", "9010-9000", "a", "1-2-3", "70000", "80;81"):
        assert parse_reserved_ports(bad) == (), bad


@given(st.integers(0, 65535), st.integers(0, 65535), st.sampled_from(["\t", " ", "  "]), st.sampled_from(["", "\n"]))
def test_parse_port_range_round_trip(a: int, b: int, sep: str, end: str) -> None:
    first, last = min(a, b), max(a, b)
    assert parse_port_range(f"{first}{sep}{last}{end}") == PortRange(first, last)


@given(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 100)), max_size=30))
def test_parse_reserved_ports_round_trip(items: list[tuple[int, int]]) -> None:
    ranges = tuple(PortRange(p, min(p + n, 65535)) for p, n in items)
    text = ",".join(str(r) for r in ranges) + "\n"  # PortRange prints as the kernel does: 80 or 80-90
    assert parse_reserved_ports(text) == ranges


@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    result = parse_port_range(text)
    assert result is None or 0 <= result.first <= result.last <= 65535
    assert all(0 <= r.first <= r.last <= 65535 for r in parse_reserved_ports(text))


def test_kernel_written_values_in_a_throwaway_namespace() -> None:
    # Both sysctls are per network namespace: set them in a fresh one and read them back through its /proc.
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        pytest.skip("needs root, ip and nsenter to create a network namespace")
    with netns.netns("pshost") as ns:
        ns.run(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=20000 29999"])
        ns.run(["sysctl", "-q", "-w", "net.ipv4.ip_local_reserved_ports=9000-9010,8080,9011"])
        code = (
            "from portscope.core.host import read_host_facts as r; f = r(); print(f.ephemeral_range, *f.reserved_ports)"
        )
        out = ns.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).stdout
    # The kernel keeps a bitmap: it prints the list sorted, with adjacent ports merged.
    assert out.split() == ["20000-29999", "8080", "9000-9011"]


def test_networks_include_ipv6_with_prefix_lengths() -> None:
    """psutil reports IPv6 netmasks as `ffff:ffff::`; every interface address must still be listed."""
    import ipaddress

    import psutil

    from portscope.core.host import read_networks

    expected = {
        (name, a.address.partition("%")[0])
        for name, addrs in psutil.net_if_addrs().items()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    }
    got = {(name, str(ipaddress.ip_interface(cidr).ip)) for name, cidr in read_networks()}
    assert got == expected
    assert ("lo", "::1") in got or not any(a == "::1" for _, a in expected)
