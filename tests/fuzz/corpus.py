"""A corpus of hostile input files, made by code (nothing downloaded): rule dumps, captures, state files.

Each maker returns the file's bytes; `write_corpus(kind, folder)` writes every case of a kind and
returns {case name: path}. The shapes come from issue 11: truncated, huge, binary, deeply nested
dumps, exponential-path rulesets (chains that share descendants), 2,000-deep chain nesting, and
captures and state files with wrong types, missing keys and huge numbers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.json"

_SAVE = (FIXTURES / "iptables" / "nft-v4.save").read_bytes()
_S = (FIXTURES / "iptables" / "nft-v4-nat.S").read_bytes()
_NFT = (FIXTURES / "nft" / "docker29.nft").read_bytes()
_NFT_JSON = (FIXTURES / "nft" / "docker29.json").read_bytes()


# --------------------------------------------------------------------------- rule dumps


def exponential_iptables(levels: int = 40) -> bytes:
    """Chains D0..Dn, each with two rules jumping to the next (every path a separate walk), a DNAT last."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":D{i} - [0:0]" for i in range(levels + 1)]
    lines.append("-A PREROUTING -j D0")
    for i in range(levels):
        lines += [f"-A D{i} -s 10.0.0.0/8 -j D{i + 1}", f"-A D{i} -s 11.0.0.0/8 -j D{i + 1}"]
    lines += [f"-A D{levels} -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80", "COMMIT", ""]
    return "\n".join(lines).encode()


def deep_iptables(depth: int = 2000) -> bytes:
    """A chain of `depth` chains, each jumping to the next, a DNAT at the bottom."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":C{i} - [0:0]" for i in range(depth + 1)]
    lines.append("-A PREROUTING -j C0")
    lines += [f"-A C{i} -j C{i + 1}" for i in range(depth)]
    lines += [f"-A C{depth} -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80", "COMMIT", ""]
    return "\n".join(lines).encode()


def _nft_chains(chains: list[tuple[str, list[str]]]) -> bytes:
    out = ["table ip fuzz {", "\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat; policy accept;"]
    out += ["\t\tjump n0", "\t}"]
    for name, rules in chains:
        out += [f"\tchain {name} {{", *(f"\t\t{r}" for r in rules), "\t}"]
    out += ["}", ""]
    return "\n".join(out).encode()


def exponential_nft(levels: int = 40) -> bytes:
    chains = [(f"n{i}", [f"ip saddr 10.0.0.0/8 jump n{i + 1}", f"ip saddr 11.0.0.0/8 jump n{i + 1}"])
              for i in range(levels)]  # fmt: skip
    chains.append((f"n{levels}", ["tcp dport 80 dnat to 172.17.0.2:80"]))
    return _nft_chains(chains)


def deep_nft(depth: int = 2000) -> bytes:
    chains = [(f"n{i}", [f"jump n{i + 1}"]) for i in range(depth)]
    chains.append((f"n{depth}", ["tcp dport 80 dnat to 172.17.0.2:80"]))
    return _nft_chains(chains)


def deep_nft_json(depth: int = 2000) -> bytes:
    """`nft -j` JSON of `deep_nft`: a base chain and `depth` chains jumping down."""
    items: list[dict] = [{"metainfo": {"version": "1.0.6", "release_name": "fuzz", "json_schema_version": 1}},
                         {"table": {"family": "ip", "name": "fuzz", "handle": 1}},
                         {"chain": {"family": "ip", "table": "fuzz", "name": "prerouting", "handle": 2, "type": "nat",
                                    "hook": "prerouting", "prio": -100, "policy": "accept"}}]  # fmt: skip
    items += [{"chain": {"family": "ip", "table": "fuzz", "name": f"n{i}", "handle": 3 + i}} for i in range(depth + 1)]

    def rule(chain: str, expr: list) -> dict:
        return {"rule": {"family": "ip", "table": "fuzz", "chain": chain, "handle": 1, "expr": expr}}

    items.append(rule("prerouting", [{"jump": {"target": "n0"}}]))
    items += [rule(f"n{i}", [{"jump": {"target": f"n{i + 1}"}}]) for i in range(depth)]
    items.append(rule(f"n{depth}", [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}},
        {"dnat": {"addr": "172.17.0.2", "port": 80}},
    ]))  # fmt: skip
    return json.dumps({"nftables": items}).encode()


def nested_json(depth: int = 100_000) -> bytes:
    """`{"nftables": [[[[…]]]]}`: JSON nested deeper than any parser's recursion."""
    return b'{"nftables": ' + b"[" * depth + b"]" * depth + b"}"


def huge_save(ports: int = 60_000) -> bytes:
    """A valid iptables-save nat table of `ports` Docker-shaped DNATs (~6 MB)."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":DOCKER - [0:0]",
             "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"]  # fmt: skip
    lines += [f"-A DOCKER ! -i docker0 -p tcp -m tcp --dport {1024 + n % 60000} -j DNAT "
              f"--to-destination 172.17.{n // 250 % 250}.{n % 250 + 2}:80" for n in range(ports)]  # fmt: skip
    return "\n".join([*lines, "COMMIT", ""]).encode()


def huge_line(size: int = 8 << 20) -> bytes:
    """One 8 MB rule line."""
    return (
        b"*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m comment --comment " + b"x" * size + b" -j ACCEPT\nCOMMIT\n"
    )


def binary(size: int = 64 << 10, seed: int = 11) -> bytes:
    return random.Random(seed).randbytes(size)


RULE_DUMPS: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "nul-bytes": lambda: b"\0" * 4096,
    "binary": binary,
    "binary-after-header": lambda: b"*nat\n" + binary(4096),
    "save-truncated-mid-line": lambda: _SAVE[: len(_SAVE) * 2 // 3],
    "save-truncated-no-commit": lambda: _SAVE.split(b"COMMIT")[0],
    "save-utf16": lambda: _SAVE.decode().encode("utf-16"),
    "save-crlf": lambda: _SAVE.replace(b"\n", b"\r\n"),
    "S-truncated": lambda: _S[: len(_S) // 2],
    "nft-truncated": lambda: _NFT[: len(_NFT) // 2],
    "nft-unbalanced-braces": lambda: _NFT.replace(b"}", b"", 3),
    "nft-json-truncated": lambda: _NFT_JSON[: len(_NFT_JSON) // 2],
    "nft-json-wrong-types": lambda: json.dumps({"nftables": [{"rule": {"expr": "x", "chain": 5}}, 7, None]}).encode(),
    "nft-json-not-object": lambda: b"[1, 2, 3]",
    "nft-json-nested-100k": nested_json,
    "exponential-iptables-40": exponential_iptables,
    "exponential-nft-40": exponential_nft,
    "deep-iptables-2000": deep_iptables,
    "deep-nft-2000": deep_nft,
    "deep-nft-json-2000": deep_nft_json,
    "huge-save-60k": huge_save,
    "huge-line-8mb": huge_line,
}


# --------------------------------------------------------------------------- captures (--snapshot)


def _sample() -> dict:
    return json.loads(SAMPLE.read_bytes())


def _capture(edit: Callable[[dict], object]) -> Callable[[], bytes]:
    def make() -> bytes:
        doc = _sample()
        edit(doc)
        return json.dumps(doc).encode()

    return make


def _set(path: tuple, value: object) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _drop(key: str) -> Callable[[dict], None]:
    return lambda doc: doc.pop(key)


CAPTURES: dict[str, Callable[[], bytes]] = {
    "not-json": lambda: b"{not json",
    "json-array": lambda: b"[]",
    "json-null": lambda: b"null",
    "binary": binary,
    "nested-100k": lambda: b"[" * 100_000 + b"]" * 100_000,
    "no-schema": _capture(_drop("schema")),
    "wrong-schema": _capture(_set(("schema",), "portscope.capture/99")),
    "no-host": _capture(_drop("host")),
    "no-sources": _capture(_drop("sources")),
    "host-is-a-list": _capture(_set(("host",), [])),
    "socket-address-number": _capture(_set(("sockets", 0, "address"), 12345)),
    "socket-port-string": _capture(_set(("sockets", 0, "port"), "80")),
    "socket-port-huge": _capture(_set(("sockets", 0, "port"), 10**30)),
    "socket-port-negative": _capture(_set(("sockets", 0, "port"), -1)),
    "container-name-null": _capture(_set(("containers", 0, "name"), None)),
    "container-networks-string": _capture(_set(("containers", 0, "networks"), "bridge")),
    "mapping-port-huge": _capture(_set(("containers", 0, "in_force", 0, "host_port"), "99999999999999999999")),
    "host-network-bad-cidr": _capture(_set(("host", "networks"), [["eth0", "10.0.0.1/99"]])),
    "host-addresses-numbers": _capture(_set(("host", "addresses"), [1, 2.5, None])),
    "ephemeral-range-reversed": _capture(_set(("host", "ephemeral_range"), {"first": 60000, "last": 10})),
    "source-text-number": _capture(_set(("sources", 0, "text"), 7)),
    "source-format-unknown": _capture(_set(("sources", 0, "format"), "pf.conf")),
    "backends-dicts-missing-keys": _capture(_set(("backends",), [{}])),
    "taken-at-number": _capture(_set(("taken_at",), 1e308)),
}


# --------------------------------------------------------------------------- state files (PORTSCOPE_STATE_DIR)


def _state(doc: object) -> Callable[[], bytes]:
    return lambda: json.dumps(doc).encode()


_GOOD_BINDING = {"id": "ps-00000001", "kind": "publish", "container": "web", "host_ip": "0.0.0.0", "host_port": 8081,
                 "container_port": 80, "protocol": "tcp"}  # fmt: skip

STATES: dict[str, Callable[[], bytes]] = {
    "not-json": lambda: b"{",
    "binary": binary,
    "json-list": _state([]),
    "json-string": _state("state"),
    "bindings-not-a-list": _state({"version": 1, "bindings": {"a": 1}}),
    "binding-not-an-object": _state({"version": 1, "bindings": [1, "x", None]}),
    "binding-missing-keys": _state({"version": 1, "bindings": [{"id": "ps-1"}]}),
    "binding-port-string": _state({"version": 1, "bindings": [{**_GOOD_BINDING, "host_port": "8081"}]}),
    "binding-port-huge": _state({"version": 1, "bindings": [{**_GOOD_BINDING, "host_port": 10**40}]}),
    "binding-ip-number": _state({"version": 1, "bindings": [{**_GOOD_BINDING, "host_ip": 7}]}),
    "binding-protocol-evil": _state({"version": 1, "bindings": [{**_GOOD_BINDING, "protocol": "tcp -j ACCEPT"}]}),
    "binding-id-newline": _state({"version": 1, "bindings": [{**_GOOD_BINDING, "id": "ps-1\n-A INPUT -j ACCEPT"}]}),
    "version-huge": _state({"version": 10**50, "bindings": []}),
    "nested-100k": lambda: b"[" * 100_000 + b"]" * 100_000,
}


def write_corpus(cases: dict[str, Callable[[], bytes]], folder: Path, suffix: str = "") -> dict[str, Path]:
    """Every case of `cases` written under `folder`: {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, make in cases.items():
        path = folder / f"{name}{suffix}"
        path.write_bytes(make())
        out[name] = path
    return out
