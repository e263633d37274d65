"""Hostile state files (`status`, `apply --dry-run`) and `-p` specs (`publish IP SPEC --dry-run`).

Both read the firewall, so each runs inside a throwaway network namespace (never the host's), with
PORTSCOPE_STATE_DIR in a temp dir and DOCKER_HOST on a missing socket. Promised: a documented exit,
one line on error, the state file and the namespace's rules unchanged, and a dry run's batch touching
only portscope's own chains (an injected `-A INPUT -j ACCEPT` or a foreign table would show here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import need_root_tools
from tests.fuzz.cli_run import assert_clean, fingerprint, run_cli
from tests.fuzz.corpus import STATES
from tests.fuzz.profile import FUZZ
from tests.sandbox import netns as sandbox

REAL_STATE = Path("/var/lib/portscope")
#: status: 0 in sync, 1 drift, 2 bad state file, 5 engine unreachable; apply --dry-run: the same without drift.
STATE_CODES = {"status": {0, 1, 2, 5}, "apply": {0, 2, 5}}


@pytest.fixture(scope="module")
def ns() -> Iterator[str]:
    need_root_tools("ip", "nsenter", "iptables-save", "nft")
    space = sandbox.create("psfz")
    try:
        yield space.name
    finally:
        sandbox.delete(space)


def _rules(ns: str) -> tuple[str, ...]:
    tools = (["iptables-nft-save"], ["ip6tables-nft-save"], ["iptables-legacy-save"], ["nft", "list", "ruleset"])
    return tuple(sandbox.NetNs(ns).run(argv, check=False).stdout for argv in tools)


def _state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    return state


# --------------------------------------------------------------------------- state files


@pytest.mark.parametrize("command", [["status"], ["apply", "--dry-run"]], ids=["status", "apply"])
@pytest.mark.parametrize("case", sorted(STATES))
def test_hostile_state_files(ns: str, tmp_path: Path, case: str, command: list[str]) -> None:
    state = _state_dir(tmp_path)
    (state / "state.json").write_bytes(STATES[case]())
    (state / "state.json").chmod(0o600)
    before, rules = fingerprint(state, REAL_STATE), _rules(ns)
    result = run_cli(command, state, netns=ns)
    assert_clean(result, STATE_CODES[command[0]])
    assert fingerprint(state, REAL_STATE) == before, "a read-only command changed the state directory"
    assert _rules(ns) == rules, "a read-only command changed the firewall"
    if result.code == 2:
        assert result.err.count("\n") == 1, str(result)


def test_a_symlinked_state_file_is_not_followed(ns: str, tmp_path: Path) -> None:
    """A state.json that is a symlink to another file: refused (exit 2), the target untouched."""
    target = tmp_path / "elsewhere.json"
    target.write_text('{"schema": "portscope.state/1", "bindings": []}')
    state = _state_dir(tmp_path)
    (state / "state.json").symlink_to(target)
    before = fingerprint(target, state)
    result = run_cli(["apply", "--dry-run"], state, netns=ns)
    assert_clean(result, {2})
    assert fingerprint(target, state) == before


def test_a_symlinked_lock_creates_nothing(ns: str, tmp_path: Path) -> None:
    """A `lock` symlink to a missing path: the path is never created."""
    state = _state_dir(tmp_path)
    target = tmp_path / "created-by-portscope"
    (state / "lock").symlink_to(target)
    result = run_cli(["status"], state, netns=ns)
    assert_clean(result, STATE_CODES["status"])
    assert not target.exists()


# --------------------------------------------------------------------------- -p specs

_TARGET = "10.1.2.3"
_OWN_CHAIN = re.compile(r"^(-A |:)PORTSCOPE[A-Z0-9-]*( |$)")
_OWN_JUMP = re.compile(r"^-I (PREROUTING|OUTPUT|POSTROUTING|FORWARD|DOCKER-USER) 1 .* -j (PORTSCOPE[A-Z0-9-]*)$")


def _assert_only_own_rules(out: str) -> None:
    """Every line of an iptables-restore batch is a table, portscope's chain or rule, a jump to it, or COMMIT."""
    for line in out.splitlines():
        if not line or line.startswith("#") or line == "COMMIT" or re.fullmatch(r"\*(nat|filter|raw)", line):
            continue
        if line.startswith(("table ", "flush table", "delete table", "add table")):
            assert " portscope" in line, f"a foreign nft table in the batch: {line!r}"
            continue
        if line.startswith(("-A", ":")):
            assert _OWN_CHAIN.match(line), f"a rule outside portscope's chains: {line!r}"
        elif line.startswith("-I"):
            assert _OWN_JUMP.match(line), f"an insert that is not portscope's jump: {line!r}"


ISSUE_SPECS = [
    "fe80::1%1]:80\n-A INPUT -j ACCEPT\n#",  # item 5: injection through an IPv6 scope id
    "[fe80::1%1]:80\n-A INPUT -j ACCEPT\n#]:8082:80",
    "0.0.0.0:8083:80\n-A INPUT -j ACCEPT",
    "8084:80/tcp\n*filter",
    "-1:80",
    "255.255.255.255:8085:80",
    "0.0.0.1:8086:80",
    "169.254.1.1:8087:80",
    "１２３:80",
    "65536:80",
    "8088:0",
    "8089-8090:80-81",
    ":80",
    "",
]


def _publish(ns: str, tmp_path: Path, spec: str) -> None:
    state = _state_dir(tmp_path)
    before, rules = fingerprint(state, REAL_STATE), _rules(ns)
    result = run_cli(["publish", _TARGET, spec, "--dry-run"], state, netns=ns)
    assert_clean(result, {0, 2})
    if result.code == 0:
        _assert_only_own_rules(result.out)
    else:
        assert result.err.count("\n") == 1 and "usage:" not in result.err, str(result)
    assert fingerprint(state, REAL_STATE) == before, "a dry run wrote the state"
    assert _rules(ns) == rules, "a dry run changed the firewall"


@pytest.mark.parametrize("spec", ISSUE_SPECS)
def test_publish_dry_run_on_hostile_specs(ns: str, tmp_path: Path, spec: str) -> None:
    _publish(ns, tmp_path, spec)


_SPEC_PARTS = st.sampled_from(
    ["8081", "80", ":", "/", "tcp", "udp", "sctp", "icmp", "0.0.0.0", "127.0.0.1", "::", "[", "]", "%", "eth0",
     "\n", " ", "-", "65535", "65536", "0", "-1", "1.2.3.4", "fe80::1", "#", "-A INPUT -j ACCEPT", ";", "\x00"]
)  # fmt: skip


@FUZZ
@given(parts=st.lists(_SPEC_PARTS | st.text(st.characters(exclude_categories=("Cs",)), max_size=4), max_size=8))
def test_publish_dry_run_on_generated_specs(ns: str, tmp_path_factory: pytest.TempPathFactory, parts) -> None:
    spec = "".join(parts).replace("\x00", "")  # argv cannot hold a NUL
    if spec.startswith("-") and not spec[1:2].isdigit():
        spec = "x" + spec  # a leading option-like word is argparse's, not the spec's
    _publish(ns, tmp_path_factory.mktemp("spec"), spec)
