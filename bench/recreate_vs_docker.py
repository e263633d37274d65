"""Time from command to traffic: `portscope recreate --add/--remove` against `docker stop`, `rm` and `run`.

For each Docker set-up (a sandboxed dockerd in its own namespace, tests/sandbox) and each round:
- `portscope recreate rcb --add PORT:80` on a running busybox httpd (health-checked, a volume,
  `-p 18600:80`), then `portscope recreate rcb --remove PORT:80`;
- the same change by hand on a twin container (`-p 18601:80`): `docker stop`, `docker rm`, `docker run`
  with the new `-p` set
  (what a user does without portscope, losing whatever the run line forgets).
The client namespace polls 10.203.0.1:PORT (bench.publish_vs_docker's poller) and stamps the moment the port
answers (or stops answering), on the same monotonic clock as the command's start.

    python -m bench.recreate_vs_docker [--rounds 3] [--setups nft-proxy,legacy-noproxy]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence

from bench.common import with_bytecode
from bench.publish_vs_docker import PORT, REPO_ROOT, WEB_CMD, Sample, client_ok, run_round, run_setups
from tests.sandbox.client import start_client, stop_client
from tests.sandbox.engine import IMAGE, SETUPS, client_ns_name, ensure_image, start_engine, stop_engine, wait_for

OTHER_PORT = 18600
#: httpd as PID 1 ignores SIGTERM: both sides stop it with KILL, so neither waits out `docker stop`'s 10 s.
RUN_ARGS = ("-v", "/www", "--health-cmd", "true", "--health-interval", "1s", "--stop-signal", "KILL")


def _docker_run(name: str, *ports: str) -> str:
    """`docker stop NAME && docker rm NAME && docker run ...` as one shell line (fixed text, no user input)."""
    publish = " ".join(f"-p {p}" for p in ports)
    run = f"/usr/bin/docker run -d --name {name} {publish} {' '.join(RUN_ARGS)} {IMAGE} sh -c '{WEB_CMD}'"
    return f"/usr/bin/docker stop {name} >/dev/null && /usr/bin/docker rm {name} >/dev/null && {run}"


def bench_setup(setup_id: str, rounds: int) -> dict[str, Sample]:
    setup = next(s for s in SETUPS if s.id == setup_id)
    engine = start_engine(setup)
    client = None
    names = ("portscope recreate --add", "portscope recreate --remove", "docker stop+rm+run (add)",
             "docker stop+rm+run (remove)")  # fmt: skip
    samples = {name: Sample() for name in names}
    try:
        ensure_image(engine)
        client = start_client(engine.ns, name=client_ns_name(engine.ns.name))
        for name, port in (("rcb", OTHER_PORT), ("rcb-twin", OTHER_PORT + 1)):
            engine.run_container(name, "-p", f"{port}:80", *RUN_ARGS, IMAGE, "sh", "-c", WEB_CMD)
        ip = engine.inspect("rcb")[0]["NetworkSettings"]["IPAddress"]
        if not wait_for(lambda: client_ok(engine, ip), timeout=30):
            raise RuntimeError("the bench container never served")
        env = with_bytecode(engine.env())
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["PORTSCOPE_STATE_DIR"] = tempfile.mkdtemp(prefix="psbench-")
        cli = [sys.executable, "-m", "portscope", "recreate", "rcb"]
        warm_up = engine.ns.argv([*cli, "--dry-run", "--add", f"{PORT}:80"])  # writes every module's .pyc
        subprocess.run(warm_up, env=env, cwd=REPO_ROOT, capture_output=True, timeout=300, check=False)
        shell = ["/bin/sh", "-c"]
        for i in range(rounds):
            steps = [
                (names[0], [*cli, "--add", f"{PORT}:80"], "up"),
                (names[1], [*cli, "--remove", f"{PORT}:80"], "down"),
                (names[2], [*shell, _docker_run("rcb-twin", f"{OTHER_PORT + 1}:80", f"{PORT}:80")], "up"),
                (names[3], [*shell, _docker_run("rcb-twin", f"{OTHER_PORT + 1}:80")], "down"),
            ]
            run_round(engine, client, env, steps, samples, f"{setup_id} round {i}")
            print(f"{setup_id}: round {i + 1}/{rounds} done", file=sys.stderr)
    finally:
        if client is not None:
            stop_client(client)
        stop_engine(engine)
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    return run_setups(__doc__ or "", bench_setup, argv, rounds=3)


if __name__ == "__main__":
    sys.exit(main())
