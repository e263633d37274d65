"""`portscope service install|uninstall|status` (issue 11): the unit, and the commands on a system in a temp dir.

The unit is checked by `systemd-analyze verify`. The commands run for real (`python -m portscope`,
the real `systemctl --root`) on a temp root, never on this host's /etc/systemd.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portscope.core import service
from tests.conftest import integration_required

REPO = Path(__file__).resolve().parents[2]
COMMAND = os.path.join(os.path.dirname(sys.executable), "portscope")  # the venv's console script
UNIT_DIR = Path(service.UNIT_DIR)
NOBODY = 65534


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if integration_required():
            pytest.fail(f"{tool} is missing (PORTSCOPE_REQUIRE_INTEGRATION=1)", pytrace=False)
        pytest.skip(f"needs {tool}")
    return path


def portscope(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "portscope", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def verify(path: Path) -> str:
    """Everything `systemd-analyze verify` says about the unit at `path` (nothing when it is sound)."""
    proc = subprocess.run(
        [need("systemd-analyze"), "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )
    said = proc.stdout + proc.stderr
    return f"exit {proc.returncode}: {said}" if proc.returncode or said else ""


def sections(text: str) -> configparser.ConfigParser:
    """The unit as sections of keys (strict: a key given twice is an error)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def tree(root: Path) -> dict[str, tuple[int, bytes | str | None]]:
    """Every entry under `root` (not following symlinks): mode and content or link target."""
    out: dict[str, tuple[int, bytes | str | None]] = {}
    for entry in sorted(root.rglob("*")):
        info = entry.lstat()
        body = os.readlink(entry) if entry.is_symlink() else entry.read_bytes() if entry.is_file() else None
        out[str(entry.relative_to(root))] = (info.st_mode, body)
    return out


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("portscope: "), proc.stderr
    return proc.stderr


# ----------------------------------------------------------------------------------------------- the unit


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    assert os.access(COMMAND, os.X_OK), f"no console script at {COMMAND} (is portscope installed in the venv?)"
    unit = tmp_path / service.UNIT
    unit.write_text(service.unit_text(COMMAND))
    assert verify(unit) == ""


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a bad value are both reported."""
    unit = tmp_path / service.UNIT
    text = service.unit_text(COMMAND)
    unit.write_text(text.replace("Restart=on-failure", "Restrat=on-failure"))
    assert "Unknown key" in verify(unit)
    unit.write_text(text.replace("Type=exec", "Type=sometimes"))
    assert "service type" in verify(unit)


def test_the_unit_applies_after_the_engine_then_watches() -> None:
    text = service.unit_text(COMMAND)
    assert text.splitlines()[0] == service.MARKER
    unit = sections(text)
    assert unit["Unit"]["After"].split() == ["docker.service"]
    assert unit["Unit"]["Wants"].split() == ["docker.service"]
    assert unit["Service"]["ExecStartPre"].split() == [COMMAND, "apply"]
    assert unit["Service"]["ExecStart"].split() == [COMMAND, "watch"]
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Service"]["StateDirectory"] == "portscope"
    assert set(unit["Service"]["CapabilityBoundingSet"].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert "ProtectKernelTunables" not in unit["Service"], "route_localnet is written under /proc/sys"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert service.exec_lines(text) == {"ExecStartPre": [COMMAND, "apply"], "ExecStart": [COMMAND, "watch"]}


PATHS = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["/", "opt", "venv", "bin", "portscope", " ", "%n", "$X", "\\", '"', "\n", "é", ";"]),
             max_size=8).map("".join),
)  # fmt: skip


@given(path=PATHS)
def test_a_command_path_goes_into_the_unit_as_exactly_itself_or_is_refused(path: str) -> None:
    try:
        text = service.unit_text(path)
    except service.ServiceError as exc:
        assert "\n" not in str(exc) and exc.exit_code == 2
        return
    assert text.isascii()
    assert service.exec_lines(text) == {"ExecStartPre": [path, "apply"], "ExecStart": [path, "watch"]}
    assert len(text.splitlines()) == len(service.unit_text("/usr/bin/portscope").splitlines())


# ----------------------------------------------------------------------------- the commands, on a temp root


def test_install_status_uninstall(tmp_path: Path) -> None:
    need("systemctl")
    root = tmp_path
    unit = root / UNIT_DIR / service.UNIT
    wants = root / UNIT_DIR / "multi-user.target.wants" / service.UNIT

    proc = portscope("service", "install", "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert f"installed {unit}" in proc.stdout and "enabled in" in proc.stdout
    assert unit.stat().st_mode & 0o777 == 0o644
    assert unit.read_text() == service.unit_text(COMMAND)
    assert os.readlink(wants) == f"/{UNIT_DIR}/{service.UNIT}"
    assert verify(unit) == ""

    doc = json.loads(portscope("service", "status", "--root", str(root), "--json").stdout)
    assert doc == {
        "schema": "portscope.service/1",
        "unit": str(unit),
        "installed": True,
        "ours": True,
        "enabled": "enabled",
        "active": None,  # systemd does not run the system under a temp dir
        "exec_start_pre": [COMMAND, "apply"],
        "exec_start": [COMMAND, "watch"],
    }
    text = portscope("service", "status", "--root", str(root)).stdout
    assert "installed" in text and "enabled: enabled" in text and f"ExecStart: {COMMAND} watch" in text

    before = tree(root)
    again = portscope("service", "install", "--root", str(root))
    assert again.returncode == 0 and "already installed" in again.stdout
    assert tree(root) == before

    proc = portscope("service", "uninstall", "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert not unit.exists() and not wants.is_symlink()
    doc = json.loads(portscope("service", "status", "--root", str(root), "--json").stdout)
    assert (doc["installed"], doc["enabled"], doc["exec_start"]) == (False, "not-found", [])
    proc = portscope("service", "uninstall", "--root", str(root))
    assert proc.returncode == 0 and "not installed" in proc.stdout


def test_an_older_unit_of_ours_is_updated(tmp_path: Path) -> None:
    need("systemctl")
    unit = tmp_path / UNIT_DIR / service.UNIT
    unit.parent.mkdir(parents=True)
    unit.write_text(service.unit_text("/opt/old/bin/portscope"))
    proc = portscope("service", "install", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("installed ")
    assert unit.read_text() == service.unit_text(COMMAND)


@pytest.mark.parametrize("kind", ["foreign", "masked", "directory"])
def test_a_unit_that_is_not_ours_is_left_alone(tmp_path: Path, kind: str) -> None:
    need("systemctl")
    unit = tmp_path / UNIT_DIR / service.UNIT
    unit.parent.mkdir(parents=True)
    if kind == "foreign":
        unit.write_text("[Unit]\nDescription=someone else's portscope\n[Service]\nExecStart=/bin/true\n")
    elif kind == "masked":
        unit.symlink_to("/dev/null")
    else:
        unit.mkdir()
    before = tree(tmp_path)
    words = {"foreign": "not written by portscope", "masked": "masked", "directory": "not a regular file"}[kind]
    for action in ("install", "uninstall"):
        proc = portscope("service", action, "--root", str(tmp_path))
        assert proc.returncode == 2, proc.stderr
        assert words in one_line(proc)
        assert tree(tmp_path) == before
    doc = json.loads(portscope("service", "status", "--root", str(tmp_path), "--json").stdout)
    assert (doc["installed"], doc["ours"], doc["exec_start"]) == (True, False, [])


@pytest.mark.parametrize("had", ["nothing", "an older unit of ours"])
def test_a_refused_enable_puts_back_what_was_there(tmp_path: Path, had: str) -> None:
    """systemctl cannot create the wants link (a file stands there): exit 1, one line, the unit as it was."""
    need("systemctl")
    folder = tmp_path / UNIT_DIR
    folder.mkdir(parents=True)
    (folder / "multi-user.target.wants").write_text("in the way\n")
    if had != "nothing":
        (folder / service.UNIT).write_text(service.unit_text("/opt/old/bin/portscope"))
    before = tree(tmp_path)
    proc = portscope("service", "install", "--root", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "enable portscope.service failed" in one_line(proc)
    assert tree(tmp_path) == before


def test_without_systemctl_nothing_is_written(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    for action in ("install", "uninstall"):
        if action == "uninstall":
            (root / UNIT_DIR).mkdir(parents=True)
            (root / UNIT_DIR / service.UNIT).write_text(service.unit_text(COMMAND))
        before = tree(root)
        proc = portscope("service", action, "--root", str(root), env=os.environ | {"PATH": str(empty)})
        assert proc.returncode == 2, proc.stderr
        assert "no systemctl on this host" in one_line(proc)
        assert tree(root) == before
    status = json.loads(portscope("service", "status", "--root", str(root), "--json",
                                  env=os.environ | {"PATH": str(empty)}).stdout)  # fmt: skip
    assert (status["installed"], status["enabled"]) == (True, None)


def test_not_root_on_this_host_is_one_line() -> None:
    """On this host (no --root) install and uninstall need root: exit 4 before anything is read or written."""
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        prefix = (need("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
    for action in ("install", "uninstall"):
        proc = portscope("service", action, env=env, prefix=prefix)
        assert proc.returncode == 4, proc.stderr
        assert f"`portscope service {action}` changes /etc/systemd/system: run it as root" in one_line(proc)


def test_python_m_portscope_without_an_installed_command_is_refused(tmp_path: Path) -> None:
    """A Python with no `portscope` script beside it (a bare checkout): exit 2, one line, nothing written."""
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    proc = subprocess.run(
        [str(python), "-m", "portscope", "service", "install", "--root", str(tmp_path / "root")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot find the installed `portscope` command" in one_line(proc)
    assert not (tmp_path / "root").exists()
