"""Recognise a docker-proxy process and read the binding it carries from its command line.

dockerd starts one `docker-proxy` per published port (unless the userland proxy is
disabled), e.g.::

    /usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80

Flags follow Go's `flag` package: `-name value`, `-name=value`, and the same with
`--`; boolean flags (`-use-listen-fd`, `-v`, `-version`) take no separate value.
Parsing stops at `--` or at the first argument that is not a flag, as Go's does.
Flags this module does not know are skipped, so newer proxies still parse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from portscope.core.model import ProxyArgs

PROXY_NAME = "docker-proxy"
PROTOCOLS = frozenset({"tcp", "udp", "sctp"})

#: Flags that take a value, as moby's cmd/docker-proxy defines them.
_VALUE_FLAGS = frozenset({"proto", "host-ip", "host-port", "container-ip", "container-port"})
#: Boolean flags: never consume the next argument.
_BOOL_FLAGS = frozenset({"use-listen-fd", "v", "version", "h", "help"})


def is_proxy_argv(argv: Sequence[str]) -> bool:
    """True when argv[0]'s basename is `docker-proxy`."""
    return bool(argv) and isinstance(argv[0], str) and argv[0].rsplit("/", 1)[-1] == PROXY_NAME


def parse_proxy_cmdline(argv: Sequence[str]) -> ProxyArgs | None:
    """The binding of a docker-proxy command line, or None for any other process or an unusable one.

    Never raises: every malformed argv gives None.
    """
    if not is_proxy_argv(argv):
        return None
    flags = _parse_flags(argv[1:])
    if flags is None:
        return None
    proto = flags.get("proto", "tcp")
    host_ip = _parse_ip(flags.get("host-ip", "0.0.0.0"))
    container_ip = _parse_ip(flags.get("container-ip", ""))
    host_port = _parse_port(flags.get("host-port", ""))
    container_port = _parse_port(flags.get("container-port", ""))
    if proto not in PROTOCOLS or host_ip is None or container_ip is None or host_port is None or container_port is None:
        return None
    return ProxyArgs(
        proto=proto, host_ip=host_ip, host_port=host_port, container_ip=container_ip, container_port=container_port
    )


def _parse_flags(args: Sequence[str]) -> dict[str, str] | None:
    """Known value flags as a dict (last one wins), or None when a known flag lacks its value."""
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not isinstance(arg, str) or len(arg) < 2 or arg[0] != "-" or arg == "--":
            break  # first non-flag argument (or "--") ends the flags, as in Go
        name = arg[2:] if arg.startswith("--") else arg[1:]
        name, eq, value = name.partition("=")
        if not name or name[0] in "-=":
            break  # Go rejects "---x" and "-=x"; the real proxy would have exited
        if name in _BOOL_FLAGS:
            continue
        if not eq:
            if name in _VALUE_FLAGS:
                if i >= len(args) or not isinstance(args[i], str):
                    return None
                value = args[i]
                i += 1
            else:
                # Unknown flag: take the next argument as its value unless it looks like a flag.
                if i < len(args) and isinstance(args[i], str) and not args[i].startswith("-"):
                    i += 1
                continue
        if name in _VALUE_FLAGS:
            values[name] = value
    return values


def _parse_ip(text: str) -> str | None:
    """An IP address in canonical form, or None."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _parse_port(text: str) -> int | None:
    """A port number 1-65535 written in decimal, or None."""
    if not (text.isascii() and text.isdigit()):
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None
