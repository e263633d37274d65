"""The wheel: one `portscope` package holding every module on disk, working in a fresh venv outside the checkout.

The wheel is built from a copy of the source (so the checkout stays clean) without build isolation, and
installed into a new venv with its dependencies at the versions of constraints/test.txt. Every command
then runs from a temporary directory, with nothing of the checkout on the path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.json"
FOLDERS = ("core", "tui", "cli")
SHIPPED = (".py", ".tcss")


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel` of a copy of the source tree (symlinks kept, caches left out)."""
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in (*FOLDERS, "portscope"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)]
    done = _run(pip, cwd=out)
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("portscope-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel and its dependencies installed."""
    home = tmp_path_factory.mktemp("venv")
    done = _run([sys.executable, "-m", "venv", str(home)], cwd=home)
    assert done.returncode == 0, done.stderr
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = _run([*pip, "-c", str(ROOT / "constraints" / "test.txt"), str(wheel)], cwd=home)
    assert done.returncode == 0, done.stderr
    yield home


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory with nothing of the checkout in it."""
    return tmp_path


def _env(columns: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "COLUMNS", "LINES")}
    env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return env


def test_the_wheel_holds_only_portscope_and_every_module_on_disk(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"portscope", next(t for t in tops if t.endswith(".dist-info"))}
    on_disk = {
        f"portscope/{path.relative_to(ROOT).as_posix()}"
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.suffix in SHIPPED and "__pycache__" not in path.parts
    }
    missing = sorted(on_disk - names)
    assert not missing, f"on disk but not in the wheel (not packaged): {missing}"
    assert {"portscope/__init__.py", "portscope/__main__.py", "portscope/tui/app.tcss"} <= names


def test_the_commands_run_from_the_wheel(venv: Path, outside: Path) -> None:
    version = _run([str(venv / "bin" / "portscope"), "--version"], cwd=outside, env=_env())
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("portscope ")
    module = _run([str(venv / "bin" / "python"), "-m", "portscope", "--version"], cwd=outside, env=_env())
    assert module.stdout == version.stdout
    where = "import portscope, importlib.util as u; print(portscope.__file__, u.find_spec('core'), u.find_spec('cli'))"
    done = _run([str(venv / "bin" / "python"), "-c", where], cwd=outside, env=_env())
    path, core_spec, cli_spec = done.stdout.split()
    assert path.startswith(str(venv)) and core_spec == cli_spec == "None"


@pytest.mark.parametrize("columns", [80, 120])
def test_list_fits_the_terminal_from_the_wheel(venv: Path, outside: Path, columns: int) -> None:
    done = _run([str(venv / "bin" / "portscope"), "list", "--snapshot", str(SAMPLE)], cwd=outside, env=_env(columns))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) > 2
    assert max(len(line) for line in lines) <= columns


def test_json_commands_from_the_wheel(venv: Path, outside: Path) -> None:
    portscope = str(venv / "bin" / "portscope")
    listed = _run([portscope, "list", "--json", "--snapshot", str(SAMPLE)], cwd=outside, env=_env())
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["bindings"]
    ephemeral = _run([portscope, "ephemeral", "-o", "json", "--snapshot", str(SAMPLE)], cwd=outside, env=_env())
    assert ephemeral.returncode == 0, ephemeral.stderr
    assert json.loads(ephemeral.stdout)["schema"] == "portscope.ephemeral/1"
    found = _run([portscope, "list", "--json", "--findings", "--snapshot", str(SAMPLE)], cwd=outside, env=_env())
    assert found.returncode == 0, found.stderr
    assert any(b["findings"] for b in json.loads(found.stdout)["bindings"])
    version = _run([portscope, "version", "-o", "json"], cwd=outside, env=_env())
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["portscope"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_from_the_wheel_is_accepted_by_the_shell(venv: Path, outside: Path, shell: str) -> None:
    binary = shutil.which(shell)
    if binary is None:
        if os.environ.get("PORTSCOPE_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"{shell} is not installed (scripts/test installs it)")
        pytest.skip(f"{shell} is not installed")
    done = _run([str(venv / "bin" / "portscope"), "completion", shell], cwd=outside, env=_env())
    assert done.returncode == 0, done.stderr
    script = outside / f"portscope.{shell}"
    script.write_text(done.stdout)
    checked = _run([binary, "-n", str(script)], cwd=outside)
    assert checked.returncode == 0, checked.stderr


TUI_PROBE = """
import asyncio, sys
from functools import partial
from textual.widgets import DataTable
from portscope.core.snapshot import read_capture
from portscope.tui.app import PortscopeApp

async def main() -> None:
    app = PortscopeApp(partial(read_capture, sys.argv[1]), refresh=0.0, source=sys.argv[1])
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        print(max(table.row_count for table in app.screen.query(DataTable)))

asyncio.run(main())
"""


def test_the_tui_runs_from_the_wheel(venv: Path, outside: Path) -> None:
    done = _run([str(venv / "bin" / "python"), "-c", TUI_PROBE, str(SAMPLE)], cwd=outside, env=_env())
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 0
