"""The collector portscope runs on a remote host: standard library only, Python 3.9 or later.

It is sent over ssh's stdin (transport.py) and answers requests, one JSON line each, with raw facts, one JSON
line each: which tools exist, file contents, the output of commands (run at once, as core.tools.run_all does),
the sockets and processes of /proc, the engine's API answers and the host's names. It decides nothing: the
commands come from portscope (core.rules.live) and every answer is parsed locally by the code that parses a
local read. It imports nothing of portscope, so it runs where portscope is not installed. One request runs
portscope there, when it is installed, for a change (core.fleet.change).
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from typing import Any

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
INET_FILES = ("tcp", "tcp6", "udp", "udp6")


def which(name: str) -> str | None:
    """The full path of a tool, searching PATH and the sbin directories (core.tools.which's rule)."""
    for folder in SEARCH_PATH.split(os.pathsep):
        if folder:
            path = os.path.join(folder, name)
            if os.access(path, os.X_OK) and not os.path.isdir(path):
                return path
    return None


def read_file(path: str) -> dict:
    """{"text": ...}, or {"error": "denied" | "missing" | message}."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return {"text": f.read()}
    except PermissionError:
        return {"error": "denied"}
    except FileNotFoundError:
        return {"error": "missing"}
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}


def run_all(commands: list, timeout: float) -> list:
    """Start every command at once and wait for all; a missing tool is 127, a timeout 124 (as run_all)."""
    running: list[tuple[Any, Any, str]] = []
    for argv in commands:
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="surrogateescape",
            )
            running.append((argv, proc, ""))
        except OSError as exc:
            running.append((argv, None, exc.strerror or str(exc)))
    results = []
    for argv, proc, error in running:
        if proc is None:
            results.append({"argv": argv, "returncode": 127, "stdout": "", "stderr": error})
            continue
        try:
            out, err = proc.communicate(timeout=timeout)
            results.append({"argv": argv, "returncode": proc.returncode, "stdout": out, "stderr": err})
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            results.append({"argv": argv, "returncode": 124, "stdout": "", "stderr": f"timed out after {timeout:g} s"})
    return results


def socket_inodes(proc: str = "/proc") -> dict:
    """Socket inode -> pid for every process whose descriptors can be read (the highest pid wins, as psutil)."""
    inodes = {}
    pids = sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    for pid in pids:
        folder = f"{proc}/{pid}/fd"
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for fd in names:
            try:
                target = os.readlink(f"{folder}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    return inodes


def process_facts(pid: int, proc: str = "/proc") -> dict:
    """The raw name (from stat), command line and real user of a process; what cannot be read is null."""
    facts: dict[str, str | None] = {"comm": None, "cmdline": None, "user": None}
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            data = f.read()
        facts["comm"] = data[data.find(b"(") + 1 : data.rfind(b")")].decode(errors="surrogateescape")
    except OSError:
        return facts
    try:
        with open(f"{proc}/{pid}/cmdline", encoding="utf-8", errors="surrogateescape") as f:
            facts["cmdline"] = f.read()
    except OSError:
        pass
    try:
        with open(f"{proc}/{pid}/status", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                if line.startswith("Uid:"):
                    uid = int(line.split()[1])
                    facts["user"] = user_name(uid)
                    break
    except (OSError, ValueError, IndexError):
        pass
    return facts


def user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def sockets(proc: str = "/proc") -> dict:
    """/proc/net/{tcp,tcp6,udp,udp6} as text, and the pid and process facts of every inet socket's inode."""
    net = {name: read_file(f"{proc}/net/{name}") for name in INET_FILES}
    inodes = socket_inodes(proc)  # after /proc/net: a socket listed there already has its descriptor
    wanted = set()
    for answer in net.values():
        for line in answer.get("text", "").splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 10 and fields[9] in inodes:
                wanted.add(fields[9])
    pids = sorted({inodes[inode] for inode in wanted})
    return {
        "net": net,
        "inodes": {inode: inodes[inode] for inode in sorted(wanted)},
        "processes": {str(pid): process_facts(pid, proc) for pid in pids},
    }


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the engine's API)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def engine(timeout: float) -> dict:
    """The engine's answers: GET /version and every container's inspect, or the error that stopped the read."""
    endpoint = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if endpoint.startswith("/"):
        endpoint = "unix://" + endpoint
    out: dict[str, Any] = {"endpoint": endpoint}
    if not endpoint.startswith("unix://"):
        out["error"] = "unsupported"
        return out
    path = "/" + endpoint[len("unix://") :].lstrip("/")
    try:
        os.stat(path)
    except PermissionError:
        out["error"] = "permission"
        return out
    except OSError:
        out["error"] = "missing"
        return out
    if not os.access(path, os.R_OK | os.W_OK):
        out["error"] = "permission"
        return out
    stage = "version"
    try:
        out["version"] = get_json(path, "/version", timeout)
        stage = "containers"
        inspects = []
        for summary in get_json(path, "/containers/json?all=1", timeout):
            try:
                inspects.append(get_json(path, f"/containers/{summary['Id']}/json", timeout))
            except LookupError:
                continue  # removed between listing and inspecting
        out["containers"] = inspects
    except Exception as exc:  # every failure is reported by kind; the caller words it
        out["error"] = error_kind(exc)
        out["message"] = " ".join(str(exc).split()) or type(exc).__name__
        out["stage"] = stage
    return out


def get_json(path: str, url: str, timeout: float) -> Any:
    connection = UnixHTTPConnection(path, timeout)
    try:
        connection.request("GET", url)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status == 404:
        raise LookupError(url)
    if response.status >= 400:
        raise RuntimeError(f"{response.status} {response.reason}: {body[:200].decode(errors='replace')}")
    return json.loads(body)


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, (ConnectionRefusedError, FileNotFoundError)):
        return "refused"
    return "other"


def host(proc: str = "/proc") -> dict:
    """Names, root-ness, the port range files, route_localnet of each interface and `ip -j address`."""
    conf = f"{proc}/sys/net/ipv4/conf"
    try:
        interfaces = sorted(os.listdir(conf))
    except OSError:
        interfaces = []
    (addresses,) = run_all([[which("ip") or "ip", "-j", "address", "show"]], 5.0)
    return {
        "hostname": socket.gethostname(),
        "kernel": os.uname().release,
        "is_root": os.geteuid() == 0,
        "port_range": read_file(f"{proc}/sys/net/ipv4/ip_local_port_range"),
        "reserved_ports": read_file(f"{proc}/sys/net/ipv4/ip_local_reserved_ports"),
        "route_localnet": {name: read_file(f"{conf}/{name}/route_localnet") for name in interfaces},
        "addresses": addresses,
    }


def facts(request: dict) -> dict:
    """Everything a read needs besides the rules' commands; the engine is read while /proc is."""
    answers: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: answers.update(engine=engine(request.get("engine_timeout", 5.0))))
    reader.start()
    answers["which"] = {name: which(name) for name in request.get("tools", ())}
    answers["files"] = {path: read_file(path) for path in request.get("files", ())}
    answers["host"] = host()
    answers["sockets"] = sockets()
    reader.join()
    return answers


def portscope(args: list, timeout: float) -> dict:
    """`portscope ARGS` on this host, without a shell, a terminal or input: the `portscope` command on the search
    path, else `python3 -m portscope` when it is importable; {"error": "missing"} when neither is there.
    A run that takes longer than `timeout` is killed and answered with 124 (as run_all)."""
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        return {"error": "the arguments must be a list of strings"}
    command = which("portscope")
    if command is not None:
        argv = [command]
    elif importlib.util.find_spec("portscope") is not None:
        argv = [sys.executable, "-m", "portscope"]
    else:
        return {"error": "missing"}
    (result,) = run_all([argv + args], timeout)
    return result


def answer(request: dict) -> dict:
    op = request.get("op")
    if op == "facts":
        return facts(request)
    if op == "run":
        return {"results": run_all(request["commands"], request.get("timeout", 10.0))}
    if op == "which":
        return {"which": {name: which(name) for name in request["names"]}}
    if op == "portscope":
        return portscope(request["args"], request.get("timeout", 20.0))
    return {"error": f"unknown request {op!r}"}


def serve(requests: Any, replies: Any) -> None:
    """Answer every request line until the input ends; a request that fails is answered with its error."""
    for line in requests:
        try:
            reply = answer(json.loads(line))
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1]:  # the login's DOCKER_HOST (sudo does not pass it on)
        os.environ["DOCKER_HOST"] = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2]:  # the login's PATH, searched last (sudo puts its secure_path in PATH)
        SEARCH_PATH = os.pathsep.join([SEARCH_PATH, sys.argv[2]])
    serve(sys.stdin, sys.stdout)
