"""The `-p` spec parser, binding references and validators: pure functions, checked by example and by Hypothesis."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.publish.errors import InputError
from portscope.core.publish.spec import PortSpec, parse_binding_ref, parse_port_spec
from portscope.core.publish.validate import (
    check_container_ref,
    check_port,
    check_reason,
    parse_address,
    parse_port,
    parse_protocol,
)

ports = st.integers(min_value=1, max_value=65535)
protocols = st.sampled_from(["tcp", "udp", "sctp"])
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80", PortSpec(80)),
        (":80", PortSpec(80)),
        ("8080:80", PortSpec(80, host_port=8080)),
        ("8080:80/udp", PortSpec(80, "udp", host_port=8080)),
        ("127.0.0.1:9000:80", PortSpec(80, host_ip="127.0.0.1", host_port=9000)),
        ("127.0.0.1::80/SCTP", PortSpec(80, "sctp", host_ip="127.0.0.1")),
        ("[::1]:8080:80", PortSpec(80, host_ip="::1", host_port=8080)),
        ("fd00::1:8080:80", PortSpec(80, host_ip="fd00::1", host_port=8080)),
        ("0.0.0.0:443:8443/tcp", PortSpec(8443, host_ip="0.0.0.0", host_port=443)),
    ],
)
def test_docker_spellings_parse(text: str, expected: PortSpec) -> None:
    assert parse_port_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("0", "1-65535"),
        ("65536", "1-65535"),
        ("abc", "not a port"),
        ("80-", "ranges"),
        ("8000-8010:80", "ranges"),
        ("80/icmp", "protocol"),
        ("80/", "protocol"),
        ("1.2.3:80:80", "not an IP address"),
        ("[::1]80", "IPv6"),
        ("80\n", "port spec"),
        ("", "port spec"),
        (" 80", "port spec"),
        ("+80", "not a port"),
        ("8080:", "not a port"),
    ],
)
def test_bad_specs_are_refused_with_a_hint(text: str, needle: str) -> None:
    with pytest.raises(InputError) as err:
        parse_port_spec(text)
    message = str(err.value)
    assert needle in message and "\n" not in message
    assert err.value.exit_code == 2


@given(ports, st.one_of(st.none(), ports), st.one_of(st.none(), ipv4, ipv6), protocols)
def test_spec_round_trips(container: int, host_port: int | None, host_ip: str | None, proto: str) -> None:
    spec = PortSpec(container, proto, host_ip, host_port)
    assert parse_port_spec(str(spec)) == spec


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_as_input(text: str) -> None:
    try:
        spec = parse_port_spec(text)
    except InputError as err:
        assert "\n" not in str(err)
    else:
        assert 1 <= spec.container_port <= 65535
        assert spec.host_port is None or 1 <= spec.host_port <= 65535
        assert spec.protocol in ("tcp", "udp", "sctp")
        assert spec.host_ip is None or ipaddress.ip_address(spec.host_ip)


@given(st.integers())
def test_port_numbers(value: int) -> None:
    ok = 1 <= value <= 65535
    if ok:
        assert parse_port(str(value)) == value == check_port(value)
    else:
        with pytest.raises(InputError):
            parse_port(str(value))
        with pytest.raises(InputError):
            check_port(value)


@given(st.text(max_size=10))
def test_protocols_come_from_a_fixed_set(text: str) -> None:
    if text.lower() in ("tcp", "udp", "sctp"):
        assert parse_protocol(text) == text.lower()
    else:
        with pytest.raises(InputError):
            parse_protocol(text)


@given(st.text(max_size=60))
def test_reason_is_one_plain_line(text: str) -> None:
    bad = any(c in text for c in "\"'`\\") or not text.isprintable()
    if bad:
        with pytest.raises(InputError):
            check_reason(text)
    else:
        assert check_reason(text) == text


@pytest.mark.parametrize("name", ["web", "a", "my_app.1-2", "0123abcd"])
def test_container_names(name: str) -> None:
    assert check_container_ref(name) == name


@pytest.mark.parametrize("name", ['we"b', "web\n", "-web", "a b", "web'", "", "x" * 200, "we$b"])
def test_bad_container_names(name: str) -> None:
    with pytest.raises(InputError) as err:
        check_container_ref(name)
    assert "\n" not in str(err.value)


def test_addresses() -> None:
    assert str(parse_address("::")) == "::"
    with pytest.raises(InputError):
        parse_address("[::1]")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("ps-1a2b3c4d", ("ps-1a2b3c4d", None, "tcp", None)),
        ("8080", (None, 8080, "tcp", None)),
        ("53/udp", (None, 53, "udp", None)),
        ("127.0.0.1:9000", (None, 9000, "tcp", "127.0.0.1")),
        ("[::1]:9000/tcp", (None, 9000, "tcp", "::1")),
    ],
)
def test_binding_refs(text: str, fields: tuple) -> None:
    ref = parse_binding_ref(text)
    assert (ref.binding_id, ref.host_port, ref.protocol, ref.host_ip) == fields


@pytest.mark.parametrize("text", ["ps-xyz", "0", "80/icmp", "web", "1.2.3.4:", "a\nb"])
def test_bad_binding_refs(text: str) -> None:
    with pytest.raises(InputError):
        parse_binding_ref(text)
