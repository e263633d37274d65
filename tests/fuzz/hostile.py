"""Host text an attacker controls (container, chain, process names, rule comments), and how it must look.

`hostile_capture()` is the shipped sample capture with every such string replaced by one of
`HOSTILE`: Rich markup that would crash (`[/x]`) or style (`[blink]`), an SGR sequence and an OSC
title change. Shown to a person, each must appear as `SHOWN[...]`: literally, controls visible.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.json"

CLOSE, BLINK, SGR, OSC = "[/x]", "[blink]x[/blink]", "\x1b[31mred", "\x1b]0;title\x07"
HOSTILE = (CLOSE, BLINK, SGR, OSC)
#: What a terminal must show for each hostile string.
SHOWN = {CLOSE: "[/x]", BLINK: "[blink]x[/blink]", SGR: "␛[31mred", OSC: "␛]0;title␇"}

#: Sample containers renamed (each has a published port): api 9000, cache 40000, web 8080, dns 5353.
RENAMED = {"api": CLOSE, "cache": BLINK, "web": SGR, "dns": OSC}

_CHAINS = f""":{CLOSE} - [0:0]
:{BLINK} - [0:0]
"""
#: Two DNATs for 7001 in the hostile chains: the second is shadowed (a finding quoting both chains).
_RULES = f"""-A PREROUTING -m addrtype --dst-type LOCAL -j {CLOSE}
-A PREROUTING -m addrtype --dst-type LOCAL -j {BLINK}
-A {CLOSE} -p tcp -m tcp --dport 7001 -m comment --comment "{SGR}" -j DNAT --to-destination 172.17.0.2:80
-A {BLINK} -p tcp -m tcp --dport 7001 -m comment --comment "{OSC}" -j DNAT --to-destination 172.17.0.3:80
"""


def _sample() -> dict:
    with open(SAMPLE, encoding="utf-8") as f:
        return json.load(f)


def hostile_capture() -> dict:
    """The sample capture (as JSON data) with hostile names everywhere a host could put them."""
    doc = copy.deepcopy(_sample())
    for c in doc["containers"]:
        if c["name"] in RENAMED:
            c["image"] = f"{RENAMED[c['name']]}:img"
            c["name"] = RENAMED[c["name"]]
    for n, s in enumerate(doc["sockets"]):
        s["process"] = HOSTILE[n % len(HOSTILE)]
        s["cmdline"] = [*s["cmdline"][:1], *HOSTILE]
    for src in doc["sources"]:
        if src["family"] == "ipv4" and "*nat\n" in src["text"]:
            text = src["text"].replace(":DOCKER - [0:0]\n", ":DOCKER - [0:0]\n" + _CHAINS, 1)
            src["text"] = _insert_nat_rules(text)
    doc["host"]["hostname"] = f"{BLINK}host"
    doc["warnings"] = [f"a warning quoting {OSC} and {CLOSE}"]
    return doc


def _insert_nat_rules(text: str) -> str:
    """`_RULES` at the end of the nat table of an iptables-save text."""
    start = text.index("*nat\n")
    end = text.index("COMMIT\n", start)
    return text[:end] + _RULES + text[end:]


def write_hostile_capture(path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(hostile_capture(), f)
    return path
