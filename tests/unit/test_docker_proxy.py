"""parse_proxy_cmdline: docker-proxy command lines as dockerd writes them, and anything else."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.docker_proxy import is_proxy_argv, parse_proxy_cmdline
from portscope.core.model import ProxyArgs

CLASSIC = [
    "/usr/bin/docker-proxy",
    "-proto",
    "tcp",
    "-host-ip",
    "0.0.0.0",
    "-host-port",
    "8080",
    "-container-ip",
    "172.17.0.2",
    "-container-port",
    "80",
]


def test_classic_command_line() -> None:
    assert parse_proxy_cmdline(CLASSIC) == ProxyArgs("tcp", "0.0.0.0", 8080, "172.17.0.2", 80)


def test_newer_command_line_with_listen_fd() -> None:
    # Docker 27+: the daemon opens the socket and passes it on fd 4 (-use-listen-fd, a boolean flag).
    argv = [
        "/usr/libexec/docker/docker-proxy",
        "-proto",
        "udp",
        "-host-ip",
        "::",
        "-host-port",
        "5353",
        "-container-ip",
        "fd00::2",
        "-container-port",
        "53",
        "-use-listen-fd",
    ]
    assert parse_proxy_cmdline(argv) == ProxyArgs("udp", "::", 5353, "fd00::2", 53)


def test_boolean_flag_does_not_swallow_the_next_flag() -> None:
    argv = ["docker-proxy", "-use-listen-fd", "-proto", "sctp", *CLASSIC[3:]]
    assert parse_proxy_cmdline(argv) == ProxyArgs("sctp", "0.0.0.0", 8080, "172.17.0.2", 80)


def test_equals_and_double_dash_forms() -> None:
    argv = [
        "docker-proxy",
        "--proto=udp",
        "-host-ip=127.0.0.1",
        "--host-port",
        "9000",
        "-container-ip=172.18.0.5",
        "--container-port=8000",
        "--use-listen-fd=true",
    ]
    assert parse_proxy_cmdline(argv) == ProxyArgs("udp", "127.0.0.1", 9000, "172.18.0.5", 8000)


def test_unknown_flags_are_tolerated() -> None:
    argv = ["docker-proxy", "-some-new-flag", "value", "-other-bool", *CLASSIC[1:], "-trailing=x"]
    assert parse_proxy_cmdline(argv) == ProxyArgs("tcp", "0.0.0.0", 8080, "172.17.0.2", 80)


def test_defaults_match_docker_proxy() -> None:
    # -proto defaults to tcp and -host-ip to 0.0.0.0 in moby's cmd/docker-proxy.
    argv = ["docker-proxy", "-host-port", "443", "-container-ip", "10.0.0.7", "-container-port", "8443"]
    assert parse_proxy_cmdline(argv) == ProxyArgs("tcp", "0.0.0.0", 443, "10.0.0.7", 8443)


def test_last_occurrence_wins_as_in_go() -> None:
    assert parse_proxy_cmdline([*CLASSIC, "-host-port", "8081"]) == ProxyArgs("tcp", "0.0.0.0", 8081, "172.17.0.2", 80)


def test_addresses_are_canonical() -> None:
    argv = [*CLASSIC[:3], "-host-ip", "0:0:0:0:0:0:0:1", *CLASSIC[5:]]
    assert parse_proxy_cmdline(argv).host_ip == "::1"


def test_flags_stop_at_first_positional_argument() -> None:
    # Go's flag package stops at the first non-flag; flags after it are not the proxy's.
    argv = ["docker-proxy", "-proto", "tcp", "positional", "-host-port", "1", "-container-ip", "1.2.3.4"]
    assert parse_proxy_cmdline(argv) is None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["dockerd", *CLASSIC[1:]],
        ["/usr/bin/docker-proxy-wrapper", *CLASSIC[1:]],
        ["docker-proxy"],
        ["docker-proxy", "-v"],
        [*CLASSIC[:-1]],  # -container-port without its value
        [*CLASSIC[:-1], "eighty"],
        [*CLASSIC[:-1], "0"],
        [*CLASSIC[:-1], "65536"],
        ["docker-proxy", "-proto", "icmp", *CLASSIC[3:]],
        [*CLASSIC[:3], "-host-ip", "localhost", *CLASSIC[5:]],
        [*CLASSIC[:7], "-container-ip", "172.17.0.256", *CLASSIC[9:]],
    ],
)
def test_not_a_usable_proxy(argv: list[str]) -> None:
    assert parse_proxy_cmdline(argv) is None


def test_is_proxy_argv_uses_the_basename() -> None:
    assert is_proxy_argv(["/usr/bin/docker-proxy"])
    assert is_proxy_argv(["docker-proxy", "-v"])
    assert not is_proxy_argv(["/usr/bin/docker-proxy.real"])
    assert not is_proxy_argv(["/docker-proxy/bin/sh"])


@given(st.lists(st.text(), max_size=20))
def test_never_raises_on_arbitrary_argv(argv: list[str]) -> None:
    result = parse_proxy_cmdline(argv)
    assert result is None or isinstance(result, ProxyArgs)


@given(
    st.lists(
        st.sampled_from(
            ["-proto", "--proto", "tcp", "udp", "-host-port", "80", "-", "--", "=", "-x=", "-container-ip", "1.2.3.4"]
        ),
        max_size=20,
    )
)
def test_never_raises_on_proxy_like_argv(rest: list[str]) -> None:
    result = parse_proxy_cmdline(["docker-proxy", *rest])
    assert result is None or isinstance(result, ProxyArgs)


_ips = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_ports = st.integers(1, 65535)


@given(
    proto=st.sampled_from(["tcp", "udp", "sctp"]),
    host_ip=_ips,
    host_port=_ports,
    container_ip=_ips,
    container_port=_ports,
    style=st.sampled_from(["-{} {}", "--{} {}", "-{}={}", "--{}={}"]),
    listen_fd=st.booleans(),
    order=st.permutations(range(5)),
)
def test_round_trip(
    proto: str,
    host_ip: str,
    host_port: int,
    container_ip: str,
    container_port: int,
    style: str,
    listen_fd: bool,
    order: list[int],
) -> None:
    pairs = [
        ("proto", proto),
        ("host-ip", host_ip),
        ("host-port", str(host_port)),
        ("container-ip", container_ip),
        ("container-port", str(container_port)),
    ]
    argv = ["/usr/bin/docker-proxy"]
    for index in order:
        name, value = pairs[index]
        argv += style.format(name, value).split(" ")
    if listen_fd:
        argv.append("-use-listen-fd")
    assert parse_proxy_cmdline(argv) == ProxyArgs(
        proto, str(ipaddress.ip_address(host_ip)), host_port, str(ipaddress.ip_address(container_ip)), container_port
    )
