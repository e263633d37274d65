"""A stand-in for `ssh` in unit tests: takes ssh's arguments, then runs the remote command on this host with
`sh -c`, as sshd would run it through the login shell. No network, no sshd: the collector and the bootstrap
are the real ones, run by the real python3.

Usage (as PORTSCOPE_SSH_COMMAND): python fleet_ssh_standin.py [-o OPT | -p PORT | -F FILE]... [--] DEST COMMAND
"""

from __future__ import annotations

import os
import sys

WITH_VALUE = {"-o", "-p", "-F", "-i", "-l", "-J"}


def main(argv: list[str]) -> None:
    rest = list(argv)
    while rest and rest[0].startswith("-") and rest[0] != "--":
        rest = rest[2:] if rest[0] in WITH_VALUE else rest[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    if len(rest) < 2:
        sys.exit("standin: no destination or command")
    if rest[0].startswith("unreachable"):
        sys.stderr.write(f"ssh: connect to host {rest[0]} port 22: Connection refused\n")
        sys.exit(255)
    os.execv("/bin/sh", ["sh", "-c", rest[1]])


if __name__ == "__main__":
    main(sys.argv[1:])
