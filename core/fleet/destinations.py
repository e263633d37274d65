"""Where a fleet's hosts are: destinations as ssh takes them, from the command line, a hosts file or an inventory.

A destination is `local` (this host, read without ssh), an alias or a host name (`~/.ssh/config` applies),
`user@host`, `ssh://user@host:port` (OpenSSH takes such URIs as they are) or `host:port` / `user@host:port` /
`[v6address]:port`, which are not ssh syntax: they become `-p PORT host`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from portscope.core.errors import PortscopeError
from portscope.core.tools import which

LOCAL = "local"
_HOST_PORT = re.compile(r"^(?P<host>(?:[^@\s/:\[\]]+@)?(?:\[[0-9A-Fa-f:.]+\]|[^@\s/:\[\]]+)):(?P<port>[0-9]{1,5})$")


class DestinationError(PortscopeError):
    """A destination, hosts file or inventory that cannot be used (bad usage: exit 2)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Destination:
    """One host of a fleet: the text the user gave, and the ssh arguments that reach it (none for `local`)."""

    text: str
    ssh_args: tuple[str, ...] = ()

    @property
    def local(self) -> bool:
        return self.text == LOCAL


def parse_destination(text: str) -> Destination:
    """A destination from its text; DestinationError (one line) for one ssh could take as an option or cannot use."""
    if text == LOCAL:
        return Destination(LOCAL)
    if not text or text.startswith("-") or any(c.isspace() or not c.isprintable() for c in text):
        raise DestinationError(f"bad host {text!r}: give an ssh destination such as user@host, host:port or an alias")
    if text.startswith("ssh://"):
        return Destination(text, ("--", text))
    match = _HOST_PORT.match(text)
    if match is None:
        if text.count(":") == 1:
            raise DestinationError(f"bad host {text!r}: the port after ':' must be a number (host:port)")
        return Destination(text, ("--", text))
    port = int(match["port"])
    if not 0 < port <= 65535:
        raise DestinationError(f"bad host {text!r}: the port must be 1-65535")
    user, at, host = match["host"].rpartition("@")
    host = host.removeprefix("[").removesuffix("]")
    return Destination(text, ("-p", str(port), "--", f"{user}{at}{host}"))


def parse_hosts_text(text: str) -> list[str]:
    """The destinations of a hosts file: one a line; `#` starts a comment; blank lines are skipped."""
    found = []
    for line in text.splitlines():
        line = line.partition("#")[0].strip()
        if line:
            found.append(line)
    return found


def read_hosts_file(path: str) -> list[str]:
    """The destinations listed in a file (parse_hosts_text): DestinationError when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse_hosts_text(f.read())
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DestinationError(f"cannot read hosts file {path}: {reason} (check the path)") from None


def inventory_hosts(path: str, timeout: float = 30.0) -> list[str]:
    """The hosts of an Ansible inventory, through `ansible-inventory -i FILE --list` (its own parser)."""
    tool = which("ansible-inventory")
    if tool is None:
        raise DestinationError(
            "--inventory needs ansible-inventory, which is not installed: install ansible-core, or use --hosts FILE"
        )
    try:
        result = subprocess.run(
            [tool, "-i", path, "--list"], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise DestinationError(f"ansible-inventory did not answer within {timeout:g} s") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or [f"exit status {result.returncode}"]
        raise DestinationError(f"ansible-inventory cannot read {path}: {lines[-1].strip()}")
    try:
        return inventory_destinations(json.loads(result.stdout))
    except (ValueError, AttributeError, TypeError):
        raise DestinationError(f"ansible-inventory printed no inventory for {path}") from None


def inventory_destinations(data: dict[str, Any]) -> list[str]:
    """Destinations from `ansible-inventory --list` JSON: every host once, in group order from `all`, as
    ansible_user@ansible_host:ansible_port when those variables are set."""
    hostvars = (data.get("_meta") or {}).get("hostvars") or {}
    names = list(dict.fromkeys(_group_hosts(data, "all", set())))
    found = []
    for name in names:
        found.append(_destination_of(name, hostvars.get(name) or {}))
    return found


def _group_hosts(data: dict[str, Any], group: str, seen: set[str]) -> Iterator[str]:
    if group in seen:
        return
    seen.add(group)
    entry = data.get(group) or {}
    yield from entry.get("hosts") or ()
    for child in entry.get("children") or ():
        yield from _group_hosts(data, child, seen)


def _destination_of(name: str, variables: dict[str, Any]) -> str:
    host = str(variables.get("ansible_host") or name)
    user = variables.get("ansible_user") or variables.get("ansible_ssh_user")
    port = variables.get("ansible_port") or variables.get("ansible_ssh_port")
    text = f"{user}@{host}" if user else host
    if port:
        return f"ssh://{text}:{port}" if ":" not in host else f"{text.replace(host, f'[{host}]')}:{port}"
    return text


def destinations(texts: Iterable[str]) -> list[Destination]:
    """Parsed destinations, each once, in the order first given."""
    return [parse_destination(text) for text in dict.fromkeys(texts)]
