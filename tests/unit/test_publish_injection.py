"""No accepted input produces rule text portscope did not mean to write (issue 11, items 4 and 5).

Hypothesis feeds arbitrary text, and text shaped like the issue's injection (an IPv6 zone carrying a
newline and a rule), to the validators a publish goes through; whatever they accept is rendered into
the iptables-restore batch and the `nft -f` batch, and every line of both must match portscope's own
line grammar. Targets that cannot receive forwarded traffic are refused with one line (exit 2).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portscope.core.publish.commit import build_batch
from portscope.core.publish.errors import InputError
from portscope.core.publish.model import StoredBinding, binding_id
from portscope.core.publish.nft_commit import build_batch as build_nft_batch
from portscope.core.publish.nft_render import CHAINS, render_nft
from portscope.core.publish.render import Placed, render
from portscope.core.publish.spec import PortSpec, parse_port_spec
from portscope.core.publish.validate import check_target_address, parse_address

_ADDR = r"[0-9a-f.:]+"
_IPT_TOKEN = (
    r"!|-[a-z]|--[a-z-]+|[0-9a-f.:]+/[0-9]+|[0-9]+|tcp|udp|sctp|DNAT|MASQUERADE|ACCEPT|DROP|comment|addrtype|"
    r"conntrack|LOCAL|lo|docker0|PORTSCOPE[A-Z-]*|\"portscope:(?:ps-[0-9a-f]{8}|jump)\"|"
    rf"{_ADDR}:[0-9]+|\[{_ADDR}\]:[0-9]+"
)
IPT_LINE = re.compile(
    r"\*(?:nat|filter|raw)|COMMIT|:PORTSCOPE[A-Z-]* - \[0:0\]"
    rf"|(?:-A PORTSCOPE[A-Z-]*|-I [A-Z-]+ [0-9]+)(?: (?:{_IPT_TOKEN}))+"
)
_NFT_TOKEN = (
    r"ip|ip6|daddr|saddr|!=|tcp|udp|sctp|dport|fib|type|local|dnat|to|masquerade|accept|drop|ct|status|"
    r"original|proto-dst|iifname|\"lo\"|\"docker0\"|comment|\"portscope:ps-[0-9a-f]{8}\"|[0-9]+|"
    rf"{_ADDR}|{_ADDR}/[0-9]+|{_ADDR}:[0-9]+|\[{_ADDR}\]:[0-9]+"
)
NFT_LINE = re.compile(
    r"(?:delete )?table ip6? portscope(?: \{\})?|table ip6? portscope \{|\tchain [a-z]+ \{|\t\}|\}"
    rf"|\t\t(?:{'|'.join(re.escape(d) for d in CHAINS.values())})"
    rf"|\t\t(?:{_NFT_TOKEN})(?: (?:{_NFT_TOKEN}))*"
)

VALID_TARGETS = ["10.0.0.5", "172.17.0.2", "fd00::5"]
VALID_SPECS = ["8082:80", "[::]:8082:80", "127.0.0.1:9000:80/udp", "80", "0.0.0.0::80/sctp", "[fd00::1]:1:65535"]
hostile = st.one_of(
    st.text(max_size=40),
    st.sampled_from(VALID_TARGETS + VALID_SPECS),
    st.builds(
        lambda head, sep, tail: head + sep + tail,
        st.sampled_from(["fe80::1", "10.0.0.5", "::", "0.0.0.0", "127.0.0.1", "[::]", "[fe80::1"]),
        st.sampled_from(["%", "%1]:80\n", "\n", "]", ":", "%eth0", " ", "\r", "}", '"']),
        st.sampled_from(["-A INPUT -j ACCEPT\n#", "table ip x { }", "1", "80", "", "eth0", "8082:80"]),
    ),
)


def accepted_target(text: str) -> str | None:
    try:
        return str(check_target_address(parse_address(text, "target")))
    except InputError:
        return None


def accepted_spec(text: str):
    try:
        return parse_port_spec(text)
    except InputError:
        return None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(target=hostile, spec=st.one_of(hostile, st.builds(lambda h: f"[{h}]:8082:80", hostile)))
def test_no_accepted_input_adds_a_line_portscope_does_not_write(target: str, spec: str) -> None:
    ip, parsed = accepted_target(target), accepted_spec(spec)
    if ip is None or parsed is None:
        return
    host = parsed.host_ip or ("::" if ":" in ip else "0.0.0.0")
    if (":" in host) != (":" in ip):
        return  # publish refuses a family mismatch before rendering
    check_rendered(ip, parsed)


@pytest.mark.parametrize(("target", "spec"), [("10.0.0.5", "8082:80"), ("fd00::5", "[::]:8082:80"),
                                              ("172.17.0.2", "127.0.0.1:9000:80/udp")])  # fmt: skip
def test_the_grammar_accepts_what_portscope_writes(target: str, spec: str) -> None:
    ip, parsed = accepted_target(target), accepted_spec(spec)
    assert ip is not None and parsed is not None
    check_rendered(ip, parsed, parsed.host_ip or ("::" if ":" in ip else "0.0.0.0"))


def check_rendered(ip: str, parsed: PortSpec, host: str | None = None) -> None:
    """Render both batches for the accepted values and check every line against the grammar."""
    host = host or parsed.host_ip or ("::" if ":" in ip else "0.0.0.0")
    family = "ipv6" if ":" in host else "ipv4"
    port = parsed.host_port or 8080
    b = StoredBinding(binding_id("publish", host, port, parsed.protocol), "publish", host, port, parsed.protocol,
                      parsed.container_port, target_ip=ip, last_ip=ip)  # fmt: skip
    placed = [Placed(b, ip, "docker0")]
    lines = build_batch(render(placed, family, {"filter": {"DOCKER-USER"}}), {}).splitlines()
    nft = build_nft_batch({family: render_nft(placed, family)}, {"ipv4": None, "ipv6": None}).splitlines()
    assert lines and nft
    assert [line for line in lines if not IPT_LINE.fullmatch(line)] == []
    assert [line for line in nft if not NFT_LINE.fullmatch(line)] == []


def test_the_issues_injection_is_refused_before_rendering() -> None:
    with pytest.raises(InputError, match="not an IP address") as exc:
        parse_address("fe80::1%1]:80\n-A INPUT -j ACCEPT\n#", "target")
    assert "\n" not in str(exc.value)
    with pytest.raises(InputError, match="zone"):
        parse_port_spec("[fe80::1%eth0]:8082:80")
    for line in ("-A INPUT -j ACCEPT", "#", "-A PORTSCOPE -j ACCEPT -A INPUT"):  # the grammar catches them
        assert not IPT_LINE.fullmatch(line)
    assert not NFT_LINE.fullmatch("table ip x { }") and not NFT_LINE.fullmatch("\t\ttcp dport 1 accept; drop")


@pytest.mark.parametrize(
    "address",
    ["255.255.255.255", "0.0.0.1", "0.0.0.0", "169.254.1.1", "224.0.0.1", "240.0.0.1", "127.0.0.2", "fe80::1",
     "::ffff:10.0.0.1", "ff02::1", "::1", "fec0::1"],
)  # fmt: skip
def test_targets_that_cannot_receive_forwarded_traffic_are_refused(address: str) -> None:
    with pytest.raises(InputError) as exc:
        check_target_address(parse_address(address, "target"))
    assert str(exc.value).startswith("target ") and "\n" not in str(exc.value)


@pytest.mark.parametrize("address", ["10.0.0.5", "172.17.0.2", "192.168.1.9", "100.64.0.1", "fd00::2", "2001:db8::5"])
def test_unicast_targets_are_accepted(address: str) -> None:
    assert str(check_target_address(parse_address(address))) == address


@pytest.mark.parametrize("spec", ["-1:80", "-80", "80:-1", "-1:-1/tcp"])
def test_a_spec_starting_with_a_minus_names_itself(spec: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_port_spec(spec)
    assert repr(spec) in str(exc.value) and "1-65535" in str(exc.value)
