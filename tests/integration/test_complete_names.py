"""`portscope __complete containers|ports` (shell completion of publish's CONTAINER and block's BINDING) from a
real sandboxed engine, and bash completing `portscope publish` with those names."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.cli.completion import script
from tests.integration.test_findings_harness import module_containers
from tests.sandbox.engine import IMAGE, Engine
from tests.sandbox.list_cli import on_path

pytestmark = pytest.mark.integration

RUNS = {
    "cn-web": ["-p", "8080:80", IMAGE, "sleep", "3600"],
    "cn-dns": ["-p", "5353:53/udp", IMAGE, "sleep", "3600"],
    "cn-quiet": [IMAGE, "sleep", "3600"],
}


@pytest.fixture(scope="module")
def live(engine: Engine) -> Iterator[Engine]:
    with module_containers(engine, RUNS):
        engine.docker("create", "--name", "cn-stopped", IMAGE, "sleep", "3600")
        try:
            yield engine
        finally:
            engine.docker("rm", "-f", "cn-stopped", check=False)


def _words(engine: Engine, kind: str) -> list[str]:
    done = engine.run_portscope("__complete", kind)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout.split()


def test_containers_are_the_running_ones(live: Engine) -> None:
    running = live.docker("ps", "--format", "{{.Names}}").stdout.split()
    names = _words(live, "containers")
    assert names == sorted(running)
    assert {"cn-web", "cn-dns", "cn-quiet"} <= set(names) and "cn-stopped" not in names


def test_ports_are_the_engine_published_ones(live: Engine) -> None:
    ports = _words(live, "ports")
    assert {"8080/tcp", "5353/udp"} <= set(ports)
    assert ports == sorted(ports, key=lambda p: (int(p.split("/")[0]), p.split("/")[1]))


def test_bash_completes_publish_with_container_names(live: Engine, tmp_path: Path) -> None:
    completion = tmp_path / "portscope.bash"
    completion.write_text(script("bash"))
    probe = f"""
source {completion}
COMP_WORDS=(portscope publish cn-); COMP_CWORD=2; COMP_LINE="portscope publish cn-"; COMP_POINT=${{#COMP_LINE}}
_shtab_portscope portscope cn- publish; echo "${{COMPREPLY[*]}}"
"""
    env = {**live.env(), "PATH": on_path(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60, env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["cn-dns", "cn-quiet", "cn-web"]
