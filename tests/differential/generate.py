"""Seeded random nat rulesets: Docker's layout plus manual rules that hit, overlap, shadow and miss the grid."""

from __future__ import annotations

import random

from tests.differential import layout
from tests.differential.model import Match, Ports, Rule, Ruleset, Verdict

MANUAL_CHAINS = ("MANUAL", "EDGE", "PORTS")
EXTRA_PORTS = (3000, 8081, 10000)  # off the grid: rules that miss every probe
RANGES = ((8000, 8010), (5000, 5001), (8005, 8080), (1, 1024), (443, 2222), (9000, 9100))
DADDRS = (
    f"{layout.HOST_A}/32",
    f"{layout.HOST_B}/32",
    f"{layout.HOST_EXTRA}/32",
    f"{layout.LOOPBACK}/32",
    "127.0.0.0/8",
    layout.TEST_NET,
    layout.CLIENT_A_NET,
    "10.99.0.5/32",  # not this host's
)
SADDRS = (
    layout.CLIENT_A_NET,
    layout.CLIENT_B_NET,
    f"{layout.CLIENT_A}/32",
    f"{layout.HOST_EXTRA}/32",
    layout.TEST_NET,
    "127.0.0.0/8",
)
IIFS = ("ext0", "ext1", "ext+", "ext1+", "e+", "docker0", "lo")


def ruleset_rng(seed: int, index: int) -> random.Random:
    """The generator for ruleset `index` of a run: the same ruleset on every backend."""
    return random.Random(f"portscope-differential:{seed}:{index}")


def generate(rng: random.Random, *, allow_drop: bool) -> Ruleset:
    """One ruleset. `allow_drop`: nft only (iptables' nat table refuses DROP); when not allowed, a drawn drop
    becomes an accept, so the other draws and thus the rest of the ruleset stay the same on every backend."""
    return _Generator(rng, allow_drop).ruleset()


class _Generator:
    def __init__(self, rng: random.Random, allow_drop: bool) -> None:
        self.rng = rng
        self.allow_drop = allow_drop
        self.docker_ports: list[int] = []

    def ruleset(self) -> Ruleset:
        rng = self.rng
        docker = rng.random() < 0.7
        user = rng.sample(MANUAL_CHAINS, rng.randint(0, 3)) + (["DOCKER"] if docker else [])
        rng.shuffle(user)
        chains: dict[str, list[Rule]] = {"PREROUTING": [], "OUTPUT": [], **{name: [] for name in user}}
        if docker:
            self.add_docker(chains)
        order = list(chains)
        for name in user:
            if name == "DOCKER" or rng.random() < 0.1:
                continue  # Docker is wired above; an unreferenced chain carries only unreachable DNATs
            for _ in range(rng.randint(1, 2)):
                source = rng.choice(order[: order.index(name)])
                verdict: Verdict = "goto" if rng.random() < 0.25 else "jump"
                self.insert(chains[source], Rule(self.match(source, sparse=True), verdict, chain=name))
        for _ in range(rng.randint(1, 6)):
            name = rng.choice(order)
            later = user[user.index(name) + 1 :] if name in user else user
            self.insert(chains[name], self.manual_rule(name, later))
        return Ruleset(chains)

    def add_docker(self, chains: dict[str, list[Rule]]) -> None:
        """Docker's nat layout: the addrtype jumps, the docker0 RETURN, one DNAT per published port."""
        rng = self.rng
        chains["PREROUTING"].append(Rule(Match(dst_local=True), "jump", chain="DOCKER"))
        output = Match(daddr="127.0.0.0/8", daddr_negated=True, dst_local=True)
        if rng.random() < 0.2:
            output = Match(dst_local=True)  # older Docker with the userland proxy off
        chains["OUTPUT"].append(Rule(output, "jump", chain="DOCKER"))
        if rng.random() < 0.9:
            chains["DOCKER"].append(Rule(Match(iif="docker0"), "return"))
        for _ in range(rng.randint(0, 4)):
            port = rng.choice(layout.GRID_PORTS) if rng.random() < 0.85 else rng.choice(EXTRA_PORTS)
            self.docker_ports.append(port)
            daddr = None
            if rng.random() < 0.25:  # -p ADDRESS:PORT:PORT
                daddr = rng.choice((f"{layout.HOST_EXTRA}/32", f"{layout.HOST_A}/32", f"{layout.LOOPBACK}/32"))
            match = Match(
                protocol=rng.choice(layout.PROTOCOLS),
                ports=Ports(((port, port),), "single"),
                daddr=daddr,
                iif="docker0",
                iif_negated=True,
            )
            target = rng.choice(layout.RESPONDERS).ip
            chains["DOCKER"].append(Rule(match, "dnat", to_ip=target, to_port=rng.choice(layout.TARGET_PORTS)))

    def insert(self, rules: list[Rule], rule: Rule) -> None:
        """At a random place: before or after Docker's jump (after it, the classic dead rule)."""
        rules.insert(self.rng.randint(0, len(rules)), rule)

    def manual_rule(self, chain: str, later: list[str]) -> Rule:
        rng = self.rng
        roll = rng.random()
        if roll < 0.2 and later:
            return Rule(self.match(chain), "goto" if rng.random() < 0.3 else "jump", chain=rng.choice(later))
        if roll < 0.32:
            return Rule(self.match(chain), "return")
        if roll < 0.42:
            return Rule(self.match(chain), "accept")
        if roll < 0.47:
            return Rule(self.match(chain), "drop" if self.allow_drop else "accept")
        match = self.match(chain)
        port = None
        if match.protocol is not None and not match.protocol_negated and rng.random() < 0.7:
            port = rng.choice(layout.TARGET_PORTS)
        return Rule(match, "dnat", to_ip=rng.choice(layout.RESPONDERS).ip, to_port=port)

    def match(self, chain: str, *, sparse: bool = False) -> Match:
        """Random matches; `sparse` (for jumps) makes each one rarer. No `-i` in OUTPUT, as iptables requires."""
        rng = self.rng
        scale = 0.5 if sparse else 1.0

        def maybe(p: float) -> bool:
            return rng.random() < p * scale

        fields: dict = {}
        roll = rng.random()
        if roll < 0.4 * scale:
            fields["protocol"] = rng.choice(layout.PROTOCOLS)
            if rng.random() < 0.8:
                fields["ports"] = self.ports()
                fields["ports_negated"] = rng.random() < 0.12
        elif roll < 0.45 * scale:
            fields["protocol"] = rng.choice(layout.PROTOCOLS)
            fields["protocol_negated"] = True
        if maybe(0.3):
            fields["daddr"] = rng.choice(DADDRS)
            fields["daddr_negated"] = rng.random() < 0.25
        if maybe(0.2):
            fields["saddr"] = rng.choice(SADDRS)
            fields["saddr_negated"] = rng.random() < 0.3
        if chain != "OUTPUT" and maybe(0.3):
            fields["iif"] = rng.choice(IIFS)
            fields["iif_negated"] = rng.random() < 0.35
        if maybe(0.15):
            fields["dst_local"] = rng.random() < 0.7
        if rng.random() < 0.05:
            fields["mark"] = rng.choice((0, 1))  # mark 0 matches every probe, mark 1 none
        return Match(**fields)

    def ports(self) -> Ports:
        rng = self.rng
        pool = layout.GRID_PORTS + EXTRA_PORTS
        roll = rng.random()
        if roll < 0.55:
            port = rng.choice(self.docker_ports) if self.docker_ports and rng.random() < 0.4 else rng.choice(pool)
            return Ports(((port, port),), "single")
        if roll < 0.8:
            return Ports((rng.choice(RANGES),), "range")
        picked = sorted(rng.sample(pool, rng.randint(2, 4)))
        ranges = [(p, p) for p in picked]
        extra = rng.choice(RANGES)
        if rng.random() < 0.3 and not any(extra[0] <= p <= extra[1] for p in picked):
            ranges.append(extra)  # nft's anonymous interval sets refuse overlapping elements
        return Ports(tuple(ranges), "multi")
