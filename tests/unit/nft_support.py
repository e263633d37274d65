"""Where the nft parser tests find their fixtures and the reference dumps."""

from __future__ import annotations

from pathlib import Path

from portscope.core.model import PortRange, Rule, Table
from portscope.core.rules.nft_text import parse_nft_text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nft"
# Reference dumps from real engines live in the workspace's shared/ folder, beside the repository (not in it).
NATLAYOUTS = next(
    (p for p in (Path(__file__).parents[3] / "shared" / "natlayouts", Path("/work/shared/natlayouts")) if p.is_dir()),
    Path("/work/shared/natlayouts"),
)
FIXTURE_NAMES = sorted(p.name.removesuffix(".nft") for p in FIXTURES.glob("*.nft"))


def load(name: str) -> list[Table]:
    return parse_nft_text((FIXTURES / f"{name}.nft").read_text(), source=f"{name}.nft")


def table(tables: list[Table], family: str, name: str) -> Table:
    (found,) = [t for t in tables if t.family == family and t.name == name]
    return found


def rules_of(tab: Table, chain: str) -> list[Rule]:
    return tab.chains[chain].rules


def only_rule(tab: Table, chain: str, text_part: str) -> Rule:
    (found,) = [r for r in rules_of(tab, chain) if text_part in r.text]
    return found


def ports(*specs: int | tuple[int, int]) -> tuple[PortRange, ...]:
    return tuple(PortRange(s, s) if isinstance(s, int) else PortRange(*s) for s in specs)


def wrap(*rules: str, family: str = "inet") -> str:
    """A one-chain table around rule lines, indented with tabs as nft prints it."""
    body = "".join(f"\t\t{r}\n" for r in rules)
    return f"table {family} t {{\n\tchain c {{\n{body}\t}}\n}}\n"


def parse_rules(*rules: str, family: str = "inet") -> list[Rule]:
    return parse_nft_text(wrap(*rules, family=family))[0].chains["c"].rules


def parse_one(rule: str, family: str = "inet") -> Rule:
    (found,) = parse_rules(rule, family=family)
    return found
