"""`read_rules` reads iptables-nft's and native tables side by side, then checks that the nf_tables generation did
not move meanwhile. A change that came between: read side by side again, up to `BY_TABLE_TRIES` times, then by
the save tools in one go. The generation is the injected source here (`RuleTools.generation`), on a host without
rule tools, so only that choice is exercised; tests/integration/test_partial_reads.py reads real tables."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from portscope.core.rules.live import BY_TABLE_TRIES, RuleRead, RuleTools, Since, read_rules
from portscope.core.tools import ToolResult


def no_tools(argvs: Sequence[Sequence[str]], timeout: float, readers: Mapping | None = None) -> list[ToolResult]:
    assert not argvs  # no rule tool on this host: nothing to run
    return []


def host(generations: Iterator[int]) -> RuleTools:
    return RuleTools(
        which=lambda name: None, run_all=no_tools, legacy_tables=lambda path: [], libiptc=False,
        generation=lambda: next(generations),
    )  # fmt: skip


def test_a_change_during_a_read_side_by_side_makes_it_read_so_again() -> None:
    read = read_rules(tools=host(iter([1, 2, 2, 2])))
    assert read.generation == 2  # held from before to after the second read (the save tools' read has none)


def test_a_ruleset_that_keeps_changing_is_read_in_one_go_after_the_last_try() -> None:
    seen: list[int] = []

    def moving() -> Iterator[int]:
        while True:
            seen.append(len(seen))
            yield seen[-1]

    assert read_rules(tools=host(moving())).generation is None
    assert len(seen) == 2 * BY_TABLE_TRIES  # before and after each try


def test_what_changed_is_asked_for_each_try_until_it_is_not_known() -> None:
    asked: list[tuple[int, int]] = []

    def touched(since: int, now: int) -> dict[tuple[str, str], frozenset[str] | None] | None:
        asked.append((since, now))
        return {} if now < 7 else None

    last = RuleRead(generation=5)
    read = read_rules(tools=host(iter([6, 7, 7, 8, 8, 8])), since=Since(last, touched))
    # The first try was built on `last` (nothing changed by 6); the second was told "not known" (it reads every
    # table), and so is the third, without asking again: "not known" was already answered.
    assert asked == [(5, 6), (5, 7)]
    assert read.generation == 8
