"""Reading, checking and writing `table bridge portscope` (the guard's rules: `core.publish.guard`)."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from portscope.core.errors import ToolError
from portscope.core.publish.errors import UnsupportedError
from portscope.core.publish.guard import CHAINS, GUARD_MARK, TABLE, WHERE, batch_lines, bridge_view
from portscope.core.publish.nft_render import NftView
from portscope.core.publish.nft_run import run_batch
from portscope.core.publish.nft_saved import differences, parse_listing
from portscope.core.publish.owned import Owned
from portscope.core.publish.render import Placed
from portscope.core.tools import run_all, which

_ABSENT = "No such file or directory"
_NAMED_OIF = re.compile(r'oif != "([^"]{1,15})"')
_PROBE = (
    "table bridge portscope-probe {\n\tchain output {\n\t\t" + CHAINS["output"] + "\n"
    f"\t\tip daddr 192.0.2.1 tcp dport 1 meta mark & 0x{GUARD_MARK:08x} == 0x{GUARD_MARK:08x} oif != 1 drop\n"
    "\t}\n}\n"
)


@dataclass(slots=True)
class BridgeChange:
    """What writing the guard's table takes: the wanted and current views, the `nft -f` lines (none: no
    change), and the warning about a foreign `bridge portscope` table left alone."""

    want: NftView
    have: NftView | None
    lines: list[str]
    warning: str | None = None


@dataclass(slots=True)
class Look:
    """What a command learns of the guard before it plans (`look`): why the guard cannot be written (None: it
    can), and our bridge table as listed (None: no table), or the error listing it raised."""

    unavailable: str | None
    bridge: NftView | None = None
    error: ToolError | None = None

    def listed(self) -> NftView | None:
        if self.error is not None:
            raise self.error
        return self.bridge


def look(nft: str) -> Look:
    """Probe the kernel and list our bridge table (both read only): run beside the snapshot's read."""
    why = unavailable(nft)
    try:
        return Look(why, read_bridge(nft))
    except ToolError as exc:
        return Look(why, error=exc)


def plan(placed: Sequence[Placed], owned: Owned, listed: NftView | None) -> BridgeChange:
    """The change to our bridge table, `listed` as the kernel holds it (UnsupportedError when a foreign one holds
    the name)."""
    have, foreign = claim(listed, owned)
    want = bridge_view(placed)
    warning = refuse_foreign(want) if foreign else None
    return BridgeChange(want=want, have=have, lines=batch_lines(want, have), warning=warning)


def unavailable(nft: str | None = None) -> str | None:
    """Why the guard cannot be written here (no nft, or a kernel without the bridge family), or None."""
    nft = nft or which("nft")
    if nft is None:
        return "nft is not installed (the nftables package)"
    try:
        result = subprocess.run([nft, "-c", "-f", "-"], input=_PROBE, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nft: {exc}"
    if result.returncode != 0:
        return "the kernel refuses nftables bridge rules (nf_tables bridge family)"
    return None


def read_bridge(nft: str) -> NftView | None:
    """Our bridge table as the kernel holds it (None: no table), every `oif` as its index."""
    (result,) = run_all([[nft, "list", "table", "bridge", TABLE]], timeout=60)
    if not result.ok:
        if _ABSENT in result.stderr:
            return None
        raise ToolError(f"{result.reason()} (run portscope as root)")
    return {chain: [numeric_oif(line) for line in lines] for chain, lines in parse_listing(result.stdout).items()}


def claim(view: NftView | None, owned: Owned) -> tuple[NftView | None, bool]:
    """Our bridge table as listed (a foreign `bridge portscope` counts as absent), and whether it is foreign."""
    if view is None:
        return None, False
    rules = [line for lines in view.values() for line in lines[1:]]
    if owned.bridge_is_ours(rules):
        return view, False
    return None, True


def refuse_foreign(want: NftView) -> str:
    """What to say about a foreign `bridge portscope` table: an error when portscope needs it, else a warning."""
    if want:
        raise UnsupportedError(
            f"table {WHERE} exists but portscope did not create it: it will not take it over; "
            "rename or delete that table and run portscope again (nothing was changed)"
        )
    return f"table {WHERE} is not portscope's (only its name looks like it): left alone"


def drift(placed: Sequence[Placed], owned: Owned, nft: str) -> list[str]:
    """Every difference between the wanted bridge table and the kernel's."""
    have, _ = claim(read_bridge(nft), owned)
    return differences("ipv4", bridge_view(placed), have, where=WHERE)


def apply_bridge(nft: str, lines: Sequence[str]) -> None:
    """Run one `nft -f` batch; RuleRefusedError (nothing changed) when the kernel refuses it."""
    run_batch(nft, "\n".join(lines) + "\n", "the guard rules")


def numeric_oif(line: str) -> str:
    """`oif != "veth1a2b"` as nft prints an interface that exists -> `oif != 7`, as portscope renders it."""

    def index(match: re.Match[str]) -> str:
        try:
            return f"oif != {socket.if_nametoindex(match.group(1))}"
        except OSError:
            return match.group(0)

    return _NAMED_OIF.sub(index, line)
