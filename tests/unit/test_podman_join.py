"""Podman pieces that need no engine: the port's holder process, the backend of netavark's chains, the unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from portscope.core import service
from portscope.core.join import join
from portscope.core.model import Binding, Socket
from portscope.core.publish.backend import choose_backend


def _binding(host_ip: str = "0.0.0.0", port: int = 8080, protocol: str = "tcp") -> Binding:
    return Binding(
        family="ipv4",
        protocol=protocol,
        host_ip=host_ip,
        host_port=port,
        target_ip="10.88.0.2",
        target_port=80,
        owner="podman",
        carriers=["dnat"],
    )


def _socket(process: str, address: str = "0.0.0.0", port: int = 8080, protocol: str = "tcp") -> Socket:
    family = "ipv6" if ":" in address else "ipv4"
    return Socket(family=family, protocol=protocol, address=address, port=port, pid=42, process=process)


def test_conmon_is_the_holder_of_the_port_it_reserves() -> None:
    conmon = _socket("conmon")
    (b,) = join([_binding()], [conmon, _socket("nginx", port=8081)], [])
    assert b.sockets == [conmon] and b.carriers == ["dnat"]


@pytest.mark.parametrize(
    ("sock", "held"),
    [
        (_socket("conmon", "127.0.0.1"), False),  # another address than the binding's
        (_socket("conmon", protocol="udp"), False),
        (_socket("conmon", port=9090), False),
        (_socket("rootlessport", "::"), True),  # a dual-stack wildcard covers the IPv4 binding
        (_socket("pasta"), True),
        (_socket("sshd"), False),  # not Podman's: a rival, left to the listener checks
    ],
)
def test_a_holder_matches_protocol_port_and_address(sock: Socket, held: bool) -> None:
    (b,) = join([_binding()], [sock], [])
    assert (b.sockets == [sock]) is held


def test_a_wildcard_holder_covers_a_binding_on_one_address() -> None:
    conmon = _socket("conmon")
    (b,) = join([_binding("10.0.0.5")], [conmon], [])
    assert b.sockets == [conmon]


@pytest.mark.parametrize(
    ("nft", "legacy", "version", "expected"),
    [
        ("", ":NETAVARK-HOSTPORT-DNAT - [0:0]", "iptables v1.8.9 (nf_tables)", "iptables-legacy"),
        (":NETAVARK-HOSTPORT-DNAT - [0:0]", "", "iptables v1.8.9 (legacy)", "iptables-nft"),
        ("", "", "iptables v1.8.9 (legacy)", "iptables-legacy"),
    ],
)
def test_the_backend_follows_netavarks_chains(nft: str, legacy: str, version: str, expected: str) -> None:
    assert choose_backend(nft, legacy, "", version) == expected


def test_the_unit_starts_after_podmans_socket_where_podman_is_installed(tmp_path: Path) -> None:
    assert not service.has_podman(str(tmp_path))
    (tmp_path / "lib/systemd/system").mkdir(parents=True)
    (tmp_path / "lib/systemd/system/podman.socket").write_text("[Socket]\n")
    assert service.has_podman(str(tmp_path))
    after = [line for line in service.unit_text("/usr/bin/portscope", podman=True).splitlines() if "After=" in line]
    assert after == ["After=docker.service podman.socket"]
    assert "podman" not in service.unit_text("/usr/bin/portscope")
