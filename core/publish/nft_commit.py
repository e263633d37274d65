"""Write portscope's nftables tables in ONE `nft -f -` batch covering both families, all-or-nothing.

For each family the batch declares our table (so that deleting it cannot fail), deletes it and declares
it again whole: nft applies a batch as one kernel transaction, so a refused rule changes nothing, and no
other table is named. Only our tables and Docker's `docker-bridges` (read only) are ever listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from portscope.core.errors import ParseError, ToolError
from portscope.core.model import Family, Table
from portscope.core.publish.commit import FAMILIES, Outcome
from portscope.core.publish.errors import UnsupportedError
from portscope.core.publish.guard import WHERE as BRIDGE_WHERE
from portscope.core.publish.guard import batch_lines, bridge_view
from portscope.core.publish.guard import rule_lines as bridge_rule_lines
from portscope.core.publish.guard_io import claim as claim_bridge
from portscope.core.publish.guard_io import numeric_oif, refuse_foreign
from portscope.core.publish.nft_docker import DockerTables, check_forwarding
from portscope.core.publish.nft_render import NFT_FAMILY, TABLE, NftView, render_nft, table_text
from portscope.core.publish.nft_run import run_batch
from portscope.core.publish.nft_saved import differences, parse_listing, rule_lines
from portscope.core.publish.owned import Owned
from portscope.core.publish.render import Placed
from portscope.core.tools import run_all, which

#: The key of `inject` (test hook) whose lines are appended to the batch, e.g. a rule the kernel refuses.
INJECT_KEY = "nft"
_ABSENT = "No such file or directory"


@dataclass(slots=True)
class NftState:
    """Our tables as the kernel holds them (None: no table), Docker's docker-bridges tables (None: none) and the
    guard's `table bridge portscope` (None: no table)."""

    ours: dict[Family, NftView | None]
    docker: dict[Family, Table | None]
    bridge: NftView | None = None


def nft_path() -> str:
    path = which("nft")
    if path is None:
        raise UnsupportedError("nft not found: install the nftables package")
    return path


def read_state(nft: str | None = None, docker_tables: DockerTables | None = None) -> NftState:
    """List our tables (the guard's bridge table too) and Docker's (as nft's JSON), all at once; `docker_tables`:
    Docker's tables as the caller has just read them under the lock (then they are not listed again)."""
    nft = nft or nft_path()
    commands = [[nft, "list", "table", NFT_FAMILY[f], TABLE] for f in FAMILIES]
    if docker_tables is None:
        commands += [[nft, "-j", "list", "table", NFT_FAMILY[f], "docker-bridges"] for f in FAMILIES]
    commands.append([nft, "list", "table", "bridge", TABLE])
    results = run_all(commands, timeout=60)
    texts: list[str | None] = []
    for result in results:
        if result.ok:
            texts.append(result.stdout)
        elif _ABSENT in result.stderr:
            texts.append(None)
        else:
            raise ToolError(f"{result.reason()} (run portscope as root)")
    ours = {f: None if t is None else parse_listing(t) for f, t in zip(FAMILIES, texts[:2], strict=True)}
    if docker_tables is not None:
        docker = {f: docker_tables.get(f) for f in FAMILIES}
        texts[2:2] = [None, None]
    else:
        docker = {f: _docker_table(t, f) for f, t in zip(FAMILIES, texts[2:4], strict=True)}
    bridge = None if texts[4] is None else parse_listing(texts[4])
    if bridge is not None:
        bridge = {chain: [numeric_oif(line) for line in lines] for chain, lines in bridge.items()}
    return NftState(ours, docker, bridge)


def _docker_table(text: str | None, family: Family) -> Table | None:
    """Docker's table of `family` from `nft -j list table` (None: no such table)."""
    if text is None:
        return None
    from portscope.core.rules.nft_json import parse_nft_json

    try:
        tables = parse_nft_json(text, source=f"nft -j list table {NFT_FAMILY[family]} docker-bridges", lazy=True)
    except ParseError:
        raise ToolError("nft -j printed something portscope cannot read: check the nftables version") from None
    return next((t for t in tables if t.name == "docker-bridges" and t.family == family), None)


def wanted_views(placed: list[Placed], state: NftState) -> dict[Family, NftView]:
    """Render both families, with Docker's accept mark where it has one (UnsupportedError when it drops)."""
    return {f: render_nft(placed, f, check_forwarding(state.docker[f], placed, f)) for f in FAMILIES}


def build_batch(
    wanted: Mapping[Family, NftView],
    current: Mapping[Family, NftView | None],
    inject: Sequence[str] = (),
    bridge: Sequence[str] = (),
) -> str:
    """The `nft -f` text that turns `current` into `wanted` (then `bridge`: the guard table's lines); empty
    when nothing changes (and nothing injected)."""
    if not inject and not bridge and all(_same(wanted.get(f, {}), current.get(f)) for f in FAMILIES):
        return ""
    lines: list[str] = []
    for family in FAMILIES:
        want, have = wanted.get(family, {}), current.get(family)
        if not want and have is None:
            continue
        name = f"{NFT_FAMILY[family]} {TABLE}"
        lines += [f"table {name} {{}}", f"delete table {name}"]
        if want:
            lines.append(table_text(family, want).rstrip("\n"))
    lines += [*bridge, *inject]
    return "\n".join(lines) + "\n"


def commit_nft(
    placed: list[Placed],
    inject: Mapping[str, Sequence[str]] | None = None,
    dry_run: bool = False,
    owned: Owned | None = None,
    guard: bool = True,
    docker_tables: DockerTables | None = None,
) -> Outcome:
    """Make the kernel hold exactly the rendered tables; RuleRefusedError leaves the ruleset as it was.

    Only a `portscope` table that `owned` records (updated in place) is portscope's: a foreign one is left
    alone and reported, and refused when portscope needs its name. With `guard`, the guard's bridge table
    (for the bindings of `placed` that carry their veth) is replaced in the same transaction. `docker_tables`:
    see `read_state`.
    """
    owned = owned if owned is not None else Owned(adopt=True)
    nft = nft_path()
    state = read_state(nft, docker_tables)
    outcome = Outcome()
    state.ours, foreign = claim_tables(state.ours, owned)
    wanted = wanted_views(placed, state)
    for family in foreign:
        where = f"{NFT_FAMILY[family]} {TABLE}"
        if wanted[family]:
            raise UnsupportedError(
                f"table {where} exists but portscope did not create it: it will not take it over; "
                "rename or delete that table and run portscope again (nothing was changed)"
            )
        outcome.warnings.append(f"table {where} is not portscope's (only its name looks like it): left alone")
    bridge_want, bridge_lines = {}, []
    if guard:
        state.bridge, foreign_bridge = claim_bridge(state.bridge, owned)
        bridge_want = bridge_view(placed)
        if foreign_bridge:
            outcome.warnings.append(refuse_foreign(bridge_want))
        bridge_lines = batch_lines(bridge_want, state.bridge)
    batch = build_batch(wanted, state.ours, (inject or {}).get(INJECT_KEY, ()), bridge_lines)
    if not batch:
        return outcome
    outcome.batches[INJECT_KEY] = batch
    pairs = [(rule_lines(f, state.ours[f]), rule_lines(f, wanted[f])) for f in FAMILIES]
    if bridge_lines:
        pairs.append((bridge_rule_lines(state.bridge), bridge_rule_lines(bridge_want)))
    for old, new in pairs:
        outcome.added += [line for line in new if line not in old]
        outcome.removed += [line for line in old if line not in new]
    if dry_run:
        return outcome
    run_batch(nft, batch, "the rules")
    for family in FAMILIES:
        owned.set_table("nftables", family, TABLE, bool(wanted[family]))
    if bridge_lines:
        owned.set_bridge(bool(bridge_want))
    return outcome


def claim_tables(
    ours: Mapping[Family, NftView | None], owned: Owned
) -> tuple[dict[Family, NftView | None], list[Family]]:
    """Our tables as listed, with a foreign `portscope` table counted as absent; and the families that have one."""
    mine: dict[Family, NftView | None] = {}
    foreign: list[Family] = []
    for family in FAMILIES:
        view = ours.get(family)
        rules = [line for lines in (view or {}).values() for line in lines[1:]]
        if view is not None and not owned.nft_table_is_ours(family, rules):
            foreign.append(family)
            view = None
        mine[family] = view
    return mine, foreign


def drift_nft(placed: list[Placed], owned: Owned | None = None, docker_tables: DockerTables | None = None) -> list[str]:
    """Every difference between the rendered tables and the kernel's (nothing is changed); `docker_tables` as
    `read_state` takes them."""
    state = read_state(docker_tables=docker_tables)
    state.ours, _ = claim_tables(state.ours, owned if owned is not None else Owned(adopt=True))
    wanted = wanted_views(placed, state)
    bridge, _ = claim_bridge(state.bridge, owned if owned is not None else Owned(adopt=True))
    out = [line for f in FAMILIES for line in differences(f, wanted[f], state.ours[f])]
    return out + differences("ipv4", bridge_view(placed), bridge, where=BRIDGE_WHERE)


def _same(want: NftView, have: NftView | None) -> bool:
    return (have is None and not want) or (have is not None and have == want)
