"""Typed records that every reader produces and every consumer reads.

Readers turn tool output (iptables-save, nft, psutil, the Docker API) into these
records; nothing downstream sees raw tool output except as evidence text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from portscope.core.reach.describe import Reach

Family = Literal["ipv4", "ipv6"]
#: Table families: iptables tables are ipv4/ipv6; a native nft table may be "inet" (both).
TableFamily = Literal["ipv4", "ipv6", "inet"]
Backend = Literal["iptables-legacy", "iptables-nft", "nftables", "dump"]


@dataclass(slots=True, frozen=True)
class PortRange:
    """An inclusive port range; a single port has first == last."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(slots=True, frozen=True)
class AddrMatch:
    """`-d 10.0.0.0/8` or `! -d 127.0.0.0/8`; `network` is CIDR text as the tool printed it."""

    network: str
    negated: bool = False


@dataclass(slots=True, frozen=True)
class IfaceMatch:
    """`-i docker0` / `! -o br-x` / `iifname != "lo"`."""

    name: str
    negated: bool = False


@dataclass(slots=True, frozen=True)
class Matches:
    """The match conditions of one rule that portscope understands.

    Anything it does not model is kept, as written, in `other`: such a rule is
    conditional (it may or may not match), never ignored.
    """

    protocol: str | None = None  # "tcp", "udp", "sctp", ...; None = any
    protocol_negated: bool = False
    dports: tuple[PortRange, ...] = ()  # empty = any port
    dports_negated: bool = False
    daddr: AddrMatch | None = None
    saddr: AddrMatch | None = None
    in_iface: IfaceMatch | None = None
    out_iface: IfaceMatch | None = None
    dst_local: bool | None = None  # addrtype --dst-type LOCAL / fib daddr type local
    family: Family | None = None  # in an inet table: the rule only matches this family (ip daddr, meta nfproto)
    other: tuple[str, ...] = ()

    @property
    def unconditional(self) -> bool:
        """True when the rule matches every packet that reaches it."""
        return not (
            self.protocol
            or self.dports
            or self.daddr
            or self.saddr
            or self.in_iface
            or self.out_iface
            or self.dst_local is not None
            or self.family
            or self.other
        )


UNCONDITIONAL = Matches()


@dataclass(slots=True, frozen=True)
class NatTarget:
    """Where a DNAT/REDIRECT sends packets: address (None for REDIRECT) and ports (None = unchanged)."""

    address: str | None
    ports: PortRange | None = None


Verdict = Literal[
    "dnat", "redirect", "snat", "masquerade", "jump", "goto", "return", "accept", "drop", "reject", "mark", "other"
]


@dataclass(slots=True)
class Rule:
    """One rule, with where it came from and its text as the tool prints it."""

    backend: Backend
    family: TableFamily
    table: str
    chain: str
    position: int  # 1-based within its chain
    text: str  # `-A CHAIN ...` as iptables-save prints it, or the nft statement line
    matches: Matches
    verdict: Verdict
    jump: str | None = None  # target chain of jump/goto
    nat: NatTarget | None = None  # dnat/redirect/snat destination
    nat_family: Family | None = None  # `dnat ip6 to ...` in an inet table; else None
    comment: str | None = None
    line: int | None = None  # line number in the source text


#: Parses a chain's deferred rule lines: `parse(chain, items) -> rules`.
RuleParser = Callable[["Chain", list[Any]], Iterable[Rule]]
#: Reads a deferred item's destination-port match from its text alone: the `Matches.dports` (not negated) that
#: parsing it gives (for a rule the parser cannot read, the ports the kernel matches it on), or None when only
#: parsing can tell.
PortReader = Callable[[Any], "tuple[PortRange, ...] | None"]


def no_stated_port(own: tuple[PortRange, ...]) -> bool:
    """For `Chain.select`: none of the rules whose text states their port match (every rule without one stays)."""
    return False


@dataclass(slots=True, eq=False, repr=False)
class Chain:
    """A chain and its rules in order.

    `hook` is set for chains the kernel enters directly: iptables built-in chains
    (prerouting, input, forward, output, postrouting) and nft base chains.
    `kind` is the nft chain type ("nat", "filter", "route") or the iptables table name.

    A reader may leave rule lines unparsed (`defer`): they are parsed on first access to
    `rules`, so a chain nobody looks at (10,000 filter ACCEPTs during `list`) costs nothing.
    """

    name: str
    hook: str | None = None
    kind: str | None = None
    policy: str | None = None
    priority: str | None = None
    parsed: list[Rule] = field(default_factory=list)  # its rules parsed so far (all of them once `rules` is read)
    _pending: list[Any] = field(default_factory=list, init=False)
    _parse: RuleParser | None = field(default=None, init=False)
    _dnat_hint: bool = field(default=False, init=False)
    _ports: PortReader | None = field(default=None, init=False)  # for every pending item (see `select`)
    _read_ports: list[tuple[PortRange, ...] | None] | None = field(default=None, init=False)  # what `_ports` read
    _moved_by: int = field(default=0, init=False)  # added to the lines of the rules parsed from now on

    def defer(self, item: object, parse: RuleParser, may_dnat: bool, ports: PortReader | None = None) -> None:
        """Queue a rule line for `parse(chain, items) -> list[Rule]` on first access; `ports` reads its port match."""
        pending = self._pending
        pending.append(item)
        self._read_ports = None
        self._parse = parse
        self._dnat_hint = self._dnat_hint or may_dnat
        self._ports = ports if len(pending) == 1 or self._ports == ports else None

    def defer_line(self, number: int, line: str, parse: RuleParser, ports: PortReader | None = None) -> None:
        """`defer` for a rule line: queued as (line number, position, text); DNAT/REDIRECT noted."""
        pending = self._pending
        pending.append((number, len(self.parsed) + len(pending) + 1, line))
        self._read_ports = None
        self._parse = parse
        self._ports = ports if len(pending) == 1 or self._ports == ports else None
        if not self._dnat_hint and ("DNAT" in line or "REDIRECT" in line):
            self._dnat_hint = True

    @property
    def rules(self) -> list[Rule]:
        if self._pending and self._parse is not None:
            pending, self._pending, self._read_ports = self._pending, [], None
            self.parsed.extend(self._parsed_now(pending))
        return self.parsed

    def select(self, keep: Callable[[tuple[PortRange, ...]], bool] | None) -> list[Rule]:
        """Its rules, less the pending ones whose port match, read from their text alone, `keep` rejects: those are
        not parsed, and the chain itself is left as it is. Every rule when `keep` is None (every port is wanted)
        or its reader cannot read ports from text. The ports read are kept for the next `select`."""
        if not self._pending or self._parse is None:
            return self.parsed
        ports = self._ports
        if ports is None or keep is None:
            return self.rules
        if self._read_ports is None:
            self._read_ports = [ports(item) for item in self._pending]
        chosen = [item for item, own in zip(self._pending, self._read_ports, strict=True) if own is None or keep(own)]
        if len(chosen) == len(self._pending):
            return self.rules  # all of them: parsed once, for good
        return [*self.parsed, *self._parsed_now(chosen)] if chosen else self.parsed

    def _parsed_now(self, items: list[Any]) -> list[Rule]:
        """The records of pending `items`, their lines moved as `move_lines` said."""
        assert self._parse is not None
        rules = list(self._parse(self, items))
        if self._moved_by:
            for rule in rules:
                if rule.line is not None:
                    rule.line += self._moved_by
        return rules

    def move_lines(self, by: int) -> None:
        """Count its rules' source lines `by` lines further on: the parsed ones now, the pending ones once parsed."""
        for rule in self.parsed:
            if rule.line is not None:
                rule.line += by
        self._moved_by += by

    @property
    def has_pending(self) -> bool:
        """True while some rule lines are not parsed yet."""
        return bool(self._pending)

    @property
    def size(self) -> int:
        """The number of rules, without parsing them."""
        return len(self.parsed) + len(self._pending)

    @property
    def may_dnat(self) -> bool:
        """False only when the chain surely holds no DNAT/REDIRECT (checked without parsing)."""
        if self._dnat_hint:
            return True
        return any(r.verdict in ("dnat", "redirect") for r in self.parsed)

    def __repr__(self) -> str:
        return f"Chain({self.name!r}, hook={self.hook!r}, kind={self.kind!r}, rules={self.size})"


@dataclass(slots=True)
class Table:
    """One table of one backend and family, e.g. iptables-nft ipv4 nat, or nft inet netavark."""

    backend: Backend
    family: TableFamily
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class RuleSource:
    """Text read from one tool, kept so a capture can be re-parsed and shown as evidence (iptables-nft's
    `-t TABLE -S` is kept as iptables-save prints that table; a rule's `line` counts in this text).

    `format` is one of "iptables-save", "iptables-S", "nft-text", "nft-json".
    """

    backend: Backend
    family: TableFamily | None
    format: str
    text: str
    origin: str  # the command or file it came from


@dataclass(slots=True, frozen=True)
class BackendStatus:
    """Whether a firewall backend was read, and if not, why (one line, with what to do)."""

    backend: Backend
    family: TableFamily | None
    read: bool
    rules: int = 0
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class ProxyArgs:
    """The binding a docker-proxy process carries, from its command line."""

    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


@dataclass(slots=True, frozen=True)
class Socket:
    """A TCP listener or a bound UDP socket, with its process where permissions allow."""

    family: Family
    protocol: str  # "tcp" or "udp"
    address: str
    port: int
    pid: int | None = None
    process: str | None = None
    cmdline: tuple[str, ...] = ()
    proxy: ProxyArgs | None = None  # set when the process is docker-proxy
    user: str | None = None  # the process's user, read for Podman's port holders (rootless: the container's user)


@dataclass(slots=True, frozen=True)
class PortMapping:
    """One port binding as Docker reports it: requested (HostConfig) or in force (NetworkSettings)."""

    container_port: int
    protocol: str
    host_ip: str  # "" when not given (requested) ; "0.0.0.0" / "::" for all addresses
    host_port: str  # "" when left for Docker to choose (requested)


@dataclass(slots=True, frozen=True)
class ContainerNetwork:
    name: str
    ipv4: str | None
    ipv6: str | None


@dataclass(slots=True, frozen=True)
class Container:
    """A container as the Docker Engine API (or Podman's compatible API) reports it."""

    id: str
    name: str
    image: str
    state: str  # running, exited, created, paused, ...
    network_mode: str
    networks: tuple[ContainerNetwork, ...] = ()
    requested: tuple[PortMapping, ...] = ()  # HostConfig.PortBindings (+ PublishAllPorts exposed ports)
    in_force: tuple[PortMapping, ...] = ()  # NetworkSettings.Ports
    publish_all: bool = False


@dataclass(slots=True, frozen=True)
class EngineInfo:
    """Which container engine answered, or why none did."""

    reachable: bool
    endpoint: str | None = None
    version: str | None = None
    name: str | None = None  # "Docker Engine" / "Podman Engine"
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class HostFacts:
    hostname: str
    kernel: str
    is_root: bool
    addresses: tuple[str, ...] = ()  # every address on the host's interfaces
    ephemeral_range: PortRange | None = None
    reserved_ports: tuple[PortRange, ...] = ()
    networks: tuple[tuple[str, str], ...] = ()  # (interface, CIDR) for every interface address
    route_localnet: tuple[str, ...] = ()  # interfaces with net.ipv4.conf.IF.route_localnet=1


@dataclass(slots=True, frozen=True)
class Connection:
    """A socket that is not a listener (an outbound or accepted connection), for port-range usage."""

    family: Family
    protocol: str
    local_port: int
    pid: int | None = None
    process: str | None = None


Owner = Literal["docker", "podman", "cni-portmap", "kube-proxy", "portscope", "manual"]
Carrier = Literal["dnat", "proxy"]


@dataclass(slots=True)
class Binding:
    """One published port: (family, protocol, host address, host port) -> target.

    `host_port_last` is set for a port range rule (`--dport 8000:8010`).
    """

    family: Family
    protocol: str
    host_ip: str  # "0.0.0.0" / "::" = all addresses
    host_port: int | None  # None: every port (a DNAT with no port match)
    target_ip: str
    target_port: int | None
    owner: Owner
    host_port_last: int | None = None
    target_port_last: int | None = None
    carriers: list[Carrier] = field(default_factory=list)
    container_id: str | None = None
    container_name: str | None = None
    container_port: int | None = None
    reported_by_engine: bool = False  # Docker/Podman lists this binding as in force
    rules: list[Rule] = field(default_factory=list)  # evidence: entry jumps ... the DNAT rule
    sockets: list[Socket] = field(default_factory=list)  # evidence: proxy / listener
    hooks: list[str] = field(default_factory=list)  # prerouting / output: where traffic is caught
    reach: Reach | None = None  # the packets its DNAT really catches (None: not from a rule, e.g. a proxy)

    @property
    def key(self) -> tuple[str, str, str, int | None, str, int | None]:
        return (self.family, self.protocol, self.host_ip, self.host_port, self.target_ip, self.target_port)

    @property
    def id(self) -> str:
        """A stable id: family/proto/host:port->target:port (ranges as first-last, `*` for any port)."""
        host_ip, target_ip = self.host_ip, self.target_ip
        first, last = self.host_port, self.host_port_last
        host_port = port_text(first, last) if first is None or last is not None else str(first)
        first, last = self.target_port, self.target_port_last
        target_port = port_text(first, last) if first is None or last is not None else str(first)
        host = f"[{host_ip}]" if ":" in host_ip else host_ip
        target = f"[{target_ip}]" if ":" in target_ip else target_ip
        return f"{self.family}/{self.protocol}/{host}:{host_port}->{target}:{target_port}"


def bracket(ip: str) -> str:
    """An address as it is written before `:port`: IPv6 in brackets."""
    return f"[{ip}]" if ":" in ip else ip


def port_text(first: int | None, last: int | None = None) -> str:
    """`8080`, `8000-8010`, or `*` for every port."""
    if first is None:
        return "*"
    return f"{first}-{last}" if last is not None else str(first)


@dataclass(slots=True, frozen=True)
class UnreachableDnat:
    """A DNAT rule that carries no host binding.

    kind "unreachable": no entry chain reaches it; "virtual-ip": it is reached only for a
    destination that is not this host's (a service VIP such as a Kubernetes ClusterIP).
    """

    rule: Rule
    reason: str
    kind: str = "unreachable"


@dataclass(slots=True)
class Snapshot:
    """Everything read from one host at one time: the input of every analysis.

    `sources` hold the raw tool output; `tables` are parsed from them.
    """

    host: HostFacts
    taken_at: str  # ISO 8601, UTC
    backends: list[BackendStatus] = field(default_factory=list)
    sources: list[RuleSource] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    sockets: list[Socket] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    engine: EngineInfo = field(default_factory=lambda: EngineInfo(reachable=False, reason="not read"))
    containers: list[Container] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
