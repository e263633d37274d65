"""Parse the options of one iptables rule (`-A CHAIN` already stripped) into matches and a verdict.

Understood: -p, -s, -d, -i, -o with `!`, `-m tcp/udp/sctp --dport`, `-m multiport --dports`,
`-m addrtype --dst-type LOCAL`, `-m comment --comment`, and the targets DNAT, REDIRECT, SNAT,
MASQUERADE, RETURN, ACCEPT, DROP, REJECT, MARK, jumps (-j CHAIN) and gotos (-g CHAIN).
Every other option is kept verbatim in `Matches.other` (the rule is then conditional).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from portscope.core.model import (
    AddrMatch,
    Backend,
    IfaceMatch,
    Matches,
    NatTarget,
    PortRange,
    Rule,
    TableFamily,
    Verdict,
)

_PORT_MODULES = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
_BUILTIN_TARGETS: dict[str, Verdict] = {
    "DNAT": "dnat",
    "REDIRECT": "redirect",
    "SNAT": "snat",
    "MASQUERADE": "masquerade",
    "RETURN": "return",
    "ACCEPT": "accept",
    "DROP": "drop",
    "REJECT": "reject",
    "MARK": "mark",
    "CONNMARK": "mark",
}
#: Targets that are extensions, not chains (anything upper-case with options is one too).
_EXTENSION_TARGETS = frozenset({"LOG", "NFLOG", "CT", "TPROXY", "NETMAP", "CLASSIFY", "TCPMSS", "NOTRACK", "TRACE"})


@dataclass(slots=True, frozen=True)
class ParsedRule:
    matches: Matches
    verdict: Verdict
    jump: str | None
    nat: NatTarget | None
    comment: str | None


def tokenize(line: str) -> list[str]:
    """Split a rule line on blanks, honouring iptables-save's double quotes and backslash escapes.

    Plain `str.split` for the common line without quotes (it is 50x faster than shlex).
    """
    if '"' not in line:
        return line.split()
    tokens: list[str] = []
    buf: list[str] = []
    in_quotes = False
    started = False
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in "\"\\'":
            buf.append(line[i + 1])
            started = True
            i += 2
            continue
        if ch == '"':
            in_quotes = not in_quotes
            started = True
        elif ch in " \t" and not in_quotes:
            if started:
                tokens.append("".join(buf))
                buf.clear()
                started = False
        else:
            buf.append(ch)
            started = True
        i += 1
    if in_quotes:
        raise ValueError("unterminated quote")
    if started:
        tokens.append("".join(buf))
    return tokens


def parse_rule_line(
    line: str, backend: Backend, family: TableFamily, table: str, chain: str, position: int, number: int | None
) -> Rule:
    """One `-A CHAIN …` line as a Rule. Raises ValueError for malformed options."""
    tokens = tokenize(line)
    parsed = parse_rule_tokens(tokens[2:])
    _same_family(family, parsed.nat, None)
    for match in (parsed.matches.daddr, parsed.matches.saddr):
        if match is not None:
            _same_family(family, None, match.network)
    return Rule(
        backend=backend,
        family=family,
        table=table,
        chain=chain,
        position=position,
        text=line,
        matches=parsed.matches,
        verdict=parsed.verdict,
        jump=parsed.jump,
        nat=parsed.nat,
        comment=parsed.comment,
        line=number,
    )


def unparsed_rule(
    line: str, backend: Backend, family: TableFamily, table: str, chain: str, position: int, number: int | None,
    error: Exception,
) -> Rule:  # fmt: skip
    """A rule portscope could not parse, kept as evidence: it matches conditionally and does nothing known."""
    return Rule(
        backend=backend,
        family=family,
        table=table,
        chain=chain,
        position=position,
        text=line,
        matches=Matches(other=(f"unparsed: {error}",)),
        verdict="other",
        line=number,
    )


@lru_cache(maxsize=1024)
def _addr(network: str, negated: bool) -> AddrMatch:
    """`-d 10.0.0.0/8`: ValueError unless an ASCII address or prefix (iptables-save prints nothing else)."""
    if not network.isascii():
        raise ValueError(f"not an address or prefix: {network!r}")
    try:
        ipaddress.ip_network(network, strict=False)
    except ValueError:
        raise ValueError(f"not an address or prefix: {network!r}") from None
    return AddrMatch(network, negated)


@lru_cache(maxsize=1 << 16)
def _ip(text: str) -> str:
    """A NAT target address or range (`10.0.0.1-10.0.0.9`), as printed: ValueError unless ASCII addresses
    of one family (no prefix, no zone)."""
    try:
        if not text.isascii() or "%" in text:
            raise ValueError(text)
        versions = {ipaddress.ip_address(part).version for part in text.split("-", 1)}
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None
    if len(versions) != 1:
        raise ValueError(f"not an IP address range: {text!r}")
    return text


def _same_family(family: str, nat: NatTarget | None, network: str | None) -> None:
    """ValueError for an address of the other family (an IPv4 DNAT target in an ip6tables dump)."""
    if family not in ("ipv4", "ipv6"):
        return
    for address in (nat.address if nat else None, network):
        if address and (":" in address) != (family == "ipv6"):
            raise ValueError(f"{address} is not an {family} address, in an {family} table")


@lru_cache(maxsize=1024)
def _iface(name: str, negated: bool) -> IfaceMatch:
    return IfaceMatch(name, negated)


@lru_cache(maxsize=1 << 17)  # every port and then some: a host with 10,000 published ports must not thrash it
def parse_ports(text: str) -> tuple[PortRange, ...]:
    """`80`, `8000:8010`, `80,443,8000:8010` (multiport), also `8000-8010` -> port ranges."""
    ranges = []
    for part in text.split(","):
        sep = ":" if ":" in part else "-"
        first, _, last = part.partition(sep)
        lo = _port(first)
        hi = _port(last) if last else lo
        if hi < lo:
            raise ValueError(f"port range {part!r} is backwards")
        ranges.append(PortRange(lo, hi))
    return tuple(ranges)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        raise ValueError(f"not a port: {text!r}")
    value = int(text)
    if value > 65535:
        raise ValueError(f"port {value} is above 65535")
    return value


def parse_nat_target(text: str) -> NatTarget:
    """`1.2.3.4`, `1.2.3.4:80`, `1.2.3.4:8000-8010`, `[fd00::2]:80`, `fd00::2` -> NatTarget."""
    if text.startswith("["):
        addr, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"unterminated [ in {text!r}")
        ports = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        addr, _, ports = text.partition(":")
    else:
        addr, ports = text, ""
    port_range = parse_ports(ports.split("/")[0])[0] if ports else None
    return NatTarget(address=_ip(addr) if addr else None, ports=port_range)


class _Builder:
    """Accumulates options into `Matches` fields while walking the tokens."""

    def __init__(self) -> None:
        self.fields: dict[str, object] = {}
        self.other: list[list[str]] = []
        self.module: str | None = None
        self.module_unmodelled = False
        self.comment: str | None = None

    def note_other(self, tokens: list[str]) -> None:
        """Keep an option we do not model, grouped under the unmodelled module that introduced it."""
        if self.module_unmodelled and self.other:
            self.other[-1].extend(tokens)
        else:
            self.other.append(list(tokens))

    def matches(self) -> Matches:
        other = tuple(" ".join(group) for group in self.other)
        return Matches(**self.fields, other=other)  # type: ignore[arg-type]  # keys: Matches fields


def parse_rule_tokens(tokens: list[str]) -> ParsedRule:
    """Parse the tokens after `-A CHAIN`. Raises ValueError for malformed options."""
    b = _Builder()
    verdict: Verdict = "other"
    jump: str | None = None
    nat: NatTarget | None = None
    i = 0
    n = len(tokens)

    def value(at: int) -> str:
        if at >= n:
            raise ValueError(f"option {tokens[at - 1]} needs a value")
        return tokens[at]

    while i < n:
        tok = tokens[i]
        negated = False
        if tok == "!":
            negated = True
            i += 1
            if i >= n:
                raise ValueError("'!' at the end of the rule")
            tok = tokens[i]
        if tok in ("-p", "--protocol"):
            b.fields["protocol"] = value(i + 1).lower()
            b.fields["protocol_negated"] = negated
            i += 2
        elif tok in ("-d", "--destination", "-s", "--source"):
            key = "daddr" if tok in ("-d", "--destination") else "saddr"
            b.fields[key] = _addr(value(i + 1), negated)
            i += 2
        elif tok in ("-i", "--in-interface", "-o", "--out-interface"):
            key = "in_iface" if tok in ("-i", "--in-interface") else "out_iface"
            b.fields[key] = IfaceMatch(value(i + 1), negated)
            i += 2
        elif tok in ("-m", "--match"):
            b.module = value(i + 1)
            b.module_unmodelled = b.module not in _PORT_MODULES and b.module not in ("multiport", "comment", "addrtype")
            if b.module_unmodelled:
                b.other.append(["-m", b.module])
            i += 2
        elif (tok in ("--dport", "--destination-port") and b.module in _PORT_MODULES | {None}) or (
            tok in ("--dports", "--destination-ports") and b.module == "multiport"
        ):
            b.fields["dports"] = parse_ports(value(i + 1))
            b.fields["dports_negated"] = negated
            i += 2
        elif tok == "--comment" and b.module == "comment":
            b.comment = value(i + 1)
            i += 2
        elif tok == "--dst-type" and b.module == "addrtype" and value(i + 1) == "LOCAL":
            b.fields["dst_local"] = not negated
            i += 2
        elif tok in ("-j", "--jump", "-g", "--goto"):
            name = value(i + 1)
            i += 2
            verdict, jump, nat, i = _target(tok in ("-g", "--goto"), name, tokens, i)
        else:
            # An option we do not model: keep it and its arguments up to the next option.
            start = i
            i += 1
            while i < n and not tokens[i].startswith("-") and tokens[i] != "!":
                i += 1
            b.note_other((["!"] if negated else []) + tokens[start:i])
    return ParsedRule(matches=b.matches(), verdict=verdict, jump=jump, nat=nat, comment=b.comment)


def _target(goto: bool, name: str, tokens: list[str], i: int) -> tuple[Verdict, str | None, NatTarget | None, int]:
    """Read a target and its options; return (verdict, jump chain, nat target, next index)."""
    if goto:
        return "goto", name, None, i
    verdict = _BUILTIN_TARGETS.get(name)
    n = len(tokens)
    has_options = i < n and tokens[i].startswith("--")
    if verdict is None and name not in _EXTENSION_TARGETS and not has_options:
        return "jump", name, None, i
    nat: NatTarget | None = None
    while i < n and tokens[i].startswith("--"):
        opt = tokens[i]
        arg = tokens[i + 1] if i + 1 < n and not tokens[i + 1].startswith("--") else None
        if opt in ("--to-destination", "--to-source") and arg is not None:
            nat = parse_nat_target(arg)
        elif opt == "--to-ports" and arg is not None:
            nat = NatTarget(address=None, ports=parse_ports(arg)[0])
        i += 2 if arg is not None else 1
    return verdict or "other", None, nat, i
