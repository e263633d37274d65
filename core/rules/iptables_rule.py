"""Parse the options of one iptables rule (`-A CHAIN` already stripped) into matches and a verdict.

Understood: -p, -s, -d, -i, -o with `!`, `-m tcp/udp/sctp --dport`, `-m multiport --dports`,
`-m addrtype --dst-type LOCAL`, `-m comment --comment`, and the targets DNAT, REDIRECT, SNAT,
MASQUERADE, RETURN, ACCEPT, DROP, REJECT, MARK, jumps (-j CHAIN) and gotos (-g CHAIN).
Every other option is kept verbatim in `Matches.other` (the rule is then conditional).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import NamedTuple

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


class ParsedRule(NamedTuple):
    """What the options of one rule say."""

    matches: Matches
    verdict: Verdict
    jump: str | None
    nat: NatTarget | None
    comment: str | None


def tokenize(line: str) -> list[str]:
    """Split a rule line on blanks, honouring iptables-save's double quotes and backslash escapes.

    The common line (no quote, no backslash, no blank but spaces) is split by `str.split`, which then
    gives exactly what `tokenize_quoted` gives (tests/unit/test_rule_tokens.py holds them equal).
    """
    if '"' not in line and "\\" not in line and line.isprintable():
        return line.split()
    return tokenize_quoted(line)


def tokenize_quoted(line: str) -> list[str]:
    """`tokenize` for any line: tokens end at spaces and tabs outside double quotes; a backslash keeps a
    following quote, apostrophe or backslash as it is."""
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
    matches, verdict, jump, nat, comment = parse_rule_tokens(tokenize(line), start=2)
    _same_family(family, nat, None)
    for match in (matches.daddr, matches.saddr):
        if match is not None:
            _same_family(family, None, match.network)
    return Rule(
        backend=backend,
        family=family,
        table=table,
        chain=chain,
        position=position,
        text=line,
        matches=matches,
        verdict=verdict,
        jump=jump,
        nat=nat,
        comment=comment,
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


def line_dports(line: str) -> tuple[PortRange, ...] | None:
    """The destination ports a rule line (`-A CHAIN …`) matches, read from its text alone: what parsing it gives as
    `Matches.dports`, not negated, when the parser takes the line (one it refuses for another part, e.g. a mask
    it cannot read, still matches only these ports in the kernel). None when the text alone cannot say so surely:
    quoting, more than one port option, a negated one, or one not right after its own module (`-m tcp --dport 80`)."""
    engine = _ENGINE_SHAPE.fullmatch(line)
    if engine is not None:  # the common lines, read at once; a test holds this equal to the walk below
        try:
            return parse_ports(engine.group(2))
        except ValueError:
            return None
    return _walk_dports(line)


def _walk_dports(line: str) -> tuple[PortRange, ...] | None:
    """`line_dports` for any line: its tokens walked."""
    if '"' in line or "\\" in line or not line.isprintable():
        return None
    found = _PORT_OPTION.findall(line)
    if len(found) != 1:
        return None
    tokens = line.split()
    at = tokens.index(found[0])
    if at < 4 or at + 1 >= len(tokens) or tokens[at - 2] != "-m":
        return None
    before = tokens[at - 3]  # an option that would take `-m` as its value, or a negation
    if at > 4 and (before in _OPTIONS or before == "!" or before.startswith("--")):
        return None
    if not _TARGET_OPTIONS.isdisjoint(tokens[2:at]):
        return None  # past the target: its options, not matches
    if tokens[at - 1] not in _MODULE_OPTIONS[_OPTIONS[tokens[at]]]:
        return None
    try:
        return parse_ports(tokens[at + 1])
    except ValueError:
        return None


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
    port_range = parse_ports(ports.partition("/")[0])[0] if ports else None
    return NatTarget(address=_ip(addr) if addr else None, ports=port_range)


#: Each option portscope reads, in either spelling, by its short name.
_OPTIONS = {
    "-p": "-p", "--protocol": "-p",
    "-d": "-d", "--destination": "-d",
    "-s": "-s", "--source": "-s",
    "-i": "-i", "--in-interface": "-i",
    "-o": "-o", "--out-interface": "-o",
    "-m": "-m", "--match": "-m",
    "--dport": "--dport", "--destination-port": "--dport",
    "--dports": "--dports", "--destination-ports": "--dports",
    "--comment": "--comment",
    "--dst-type": "--dst-type",
    "-j": "-j", "--jump": "-j",
    "-g": "-g", "--goto": "-g",
}  # fmt: skip
#: A destination-port option, any spelling, as a whole token; the spellings of a target (its options follow it).
_PORT_OPTION = re.compile(
    " ({})(?= |$)".format("|".join(name for name, option in _OPTIONS.items() if option in ("--dport", "--dports")))
)
#: The lines engines write (Docker's DNAT, hairpin MASQUERADE and filter ACCEPT): only addresses and interfaces
#: before `-p P -m P --dport N`, then a plain target; its port is what `_walk_dports` reads. Names and values are
#: printable ASCII without quotes or backslashes, and do not start with `-` or `!`.
_NAME = r"[#-,.-\[\]-~][!#-\[\]-~]*"
_ENGINE_SHAPE = re.compile(
    rf"-A {_NAME}(?: (?:! )?-[sdio] {_NAME})* -p (tcp|udp|sctp) -m \1 --dport (\d{{1,5}})"
    r" -j (?:ACCEPT|MASQUERADE|RETURN|DROP|DNAT --to-destination [\d.:\[\]a-f-]+)",
    re.ASCII,
)
_TARGET_OPTIONS = frozenset(name for name, option in _OPTIONS.items() if option in ("-j", "-g"))
#: The option that takes a module's values -> the modules it belongs to (None: no `-m` before it).
_MODULE_OPTIONS: dict[str, frozenset[str | None]] = {
    "--dport": _PORT_MODULES | {None},
    "--dports": frozenset({"multiport"}),
    "--comment": frozenset({"comment"}),
    "--dst-type": frozenset({"addrtype"}),
}
#: Modules whose options portscope reads; the options of any other module are kept in `Matches.other`.
_MODELLED_MODULES = _PORT_MODULES | {"multiport", "comment", "addrtype"}


def parse_rule_tokens(tokens: list[str], start: int = 0) -> ParsedRule:
    """Parse the options in `tokens[start:]` (the tokens after `-A CHAIN`). Raises ValueError for malformed
    options."""
    protocol: str | None = None
    protocol_negated = dports_negated = False
    dports: tuple[PortRange, ...] = ()
    daddr = saddr = None
    in_iface = out_iface = None
    dst_local: bool | None = None
    other: list[list[str]] = []  # the options portscope does not model, grouped by their module
    module: str | None = None
    module_unmodelled = False
    comment: str | None = None
    verdict: Verdict = "other"
    jump: str | None = None
    nat: NatTarget | None = None
    i = start
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        negated = tok == "!"
        if negated:
            i += 1
            if i >= n:
                raise ValueError("'!' at the end of the rule")
            tok = tokens[i]
        option = _OPTIONS.get(tok)
        modules = _MODULE_OPTIONS.get(option) if option is not None else None
        if modules is not None and (
            module not in modules or (option == "--dst-type" and i + 1 < n and tokens[i + 1] != "LOCAL")
        ):
            option = None  # another module's option of that name, or another address type
        if option is None:
            # An option we do not model: keep it and its arguments up to the next option, grouped under
            # the unmodelled module that introduced it.
            first = i
            i += 1
            while i < n and not tokens[i].startswith("-") and tokens[i] != "!":
                i += 1
            group = ["!", *tokens[first:i]] if negated else tokens[first:i]
            if module_unmodelled and other:
                other[-1].extend(group)
            else:
                other.append(group)
            continue
        if i + 1 >= n:
            raise ValueError(f"option {tok} needs a value")
        arg = tokens[i + 1]
        i += 2
        if option == "-p":
            protocol, protocol_negated = arg.lower(), negated
        elif option == "-d":
            daddr = _addr(arg, negated)
        elif option == "-s":
            saddr = _addr(arg, negated)
        elif option == "-i":
            in_iface = _iface(arg, negated)
        elif option == "-o":
            out_iface = _iface(arg, negated)
        elif option == "-m":
            module = arg
            module_unmodelled = arg not in _MODELLED_MODULES
            if module_unmodelled:
                other.append(["-m", arg])
        elif option == "--dport" or option == "--dports":
            dports, dports_negated = parse_ports(arg), negated
        elif option == "--comment":
            comment = arg
        elif option == "--dst-type":
            dst_local = not negated
        else:  # -j or -g
            verdict, jump, nat, i = _target(option == "-g", arg, tokens, i)
    matches = Matches(
        protocol=protocol,
        protocol_negated=protocol_negated,
        dports=dports,
        dports_negated=dports_negated,
        daddr=daddr,
        saddr=saddr,
        in_iface=in_iface,
        out_iface=out_iface,
        dst_local=dst_local,
        other=tuple(" ".join(group) for group in other) if other else (),
    )
    return ParsedRule(matches, verdict, jump, nat, comment)


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
