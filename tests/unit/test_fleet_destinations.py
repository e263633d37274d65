"""Fleet destinations: ssh's forms, host:port made into `-p`, what could pass as an option, hosts files and
Ansible's inventory JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core.fleet.destinations import (
    LOCAL,
    Destination,
    DestinationError,
    destinations,
    inventory_destinations,
    parse_destination,
    parse_hosts_text,
)

NAME = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True)
USER = st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True)
PORT = st.integers(1, 65535)


def test_local_is_read_without_ssh() -> None:
    assert parse_destination(LOCAL) == Destination(LOCAL)
    assert parse_destination(LOCAL).local


@given(NAME)
def test_a_name_or_alias_goes_to_ssh_as_it_is(name: str) -> None:
    assert parse_destination(name).ssh_args == ("--", name)


@given(USER, NAME, PORT)
def test_host_port_becomes_dash_p(user: str, name: str, port: int) -> None:
    assert parse_destination(f"{name}:{port}").ssh_args == ("-p", str(port), "--", name)
    assert parse_destination(f"{user}@{name}:{port}").ssh_args == ("-p", str(port), "--", f"{user}@{name}")


@given(USER, NAME, PORT)
def test_ssh_uris_pass_as_they_are(user: str, name: str, port: int) -> None:
    text = f"ssh://{user}@{name}:{port}"
    assert parse_destination(text).ssh_args == ("--", text)


@given(st.ip_addresses(v=6), PORT)
def test_bracketed_ipv6_with_a_port(address: object, port: int) -> None:
    assert parse_destination(f"[{address}]:{port}").ssh_args == ("-p", str(port), "--", str(address))
    assert parse_destination(str(address)).ssh_args == ("--", str(address))


@given(st.text(min_size=0, max_size=40))
def test_any_text_is_refused_in_one_line_or_reaches_ssh_after_the_options(text: str) -> None:
    """Whatever the text, the destination is the argument after `--` (never an option) or a one-line refusal."""
    try:
        dest = parse_destination(text)
    except DestinationError as exc:
        assert "\n" not in str(exc)
        return
    if dest.local:
        return
    assert not text.startswith("-")
    assert not any(c.isspace() for c in text)
    assert dest.ssh_args[-2] == "--"
    assert dest.ssh_args[:-2] in ((), ("-p", dest.ssh_args[1]))


@pytest.mark.parametrize("text", ["-oProxyCommand=touch /tmp/x", "-p", "", "h1 h2", "host:", "host:http", "h:99999"])
def test_refused(text: str) -> None:
    with pytest.raises(DestinationError):
        parse_destination(text)


def test_each_destination_once_in_the_order_first_given() -> None:
    assert [d.text for d in destinations(["h2", "h1", "h2", "local"])] == ["h2", "h1", "local"]


def test_hosts_file_lines_comments_and_blanks() -> None:
    text = "# web tier\nh1\n\n  user@h2:2222  # second\n#h3\nlocal\n"
    assert parse_hosts_text(text) == ["h1", "user@h2:2222", "local"]


def test_inventory_json_hosts_in_group_order_with_their_variables() -> None:
    data = {
        "_meta": {
            "hostvars": {
                "web1": {"ansible_host": "198.51.100.10", "ansible_user": "ops", "ansible_port": 2222},
                "db1": {"ansible_user": "root"},
                "v6": {"ansible_host": "2001:db8::5", "ansible_port": 22},
            }
        },
        "all": {"children": ["ungrouped", "web", "db"]},
        "ungrouped": {"hosts": ["v6"]},
        "web": {"hosts": ["web1"]},
        "db": {"hosts": ["db1", "web1"]},
    }
    found = inventory_destinations(data)
    assert found == ["[2001:db8::5]:22", "ssh://ops@198.51.100.10:2222", "root@db1"]
    assert [parse_destination(text).ssh_args for text in found] == [
        ("-p", "22", "--", "2001:db8::5"),
        ("--", "ssh://ops@198.51.100.10:2222"),
        ("--", "root@db1"),
    ]
