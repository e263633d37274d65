"""Which nf_tables tables changed between two generations, from the committed changes' notices."""

from __future__ import annotations

from portscope.core.changes.nft_notices import Commit
from portscope.core.changes.rule_changes import MAX_COMMITS, RuleChanges

NAT = ("ip", "nat")
DOCKER = ("ip", "docker-bridges")


def changes(*commits: Commit | None) -> RuleChanges:
    """A watcher's record after a read of every table (at generation 0), then `commits`."""
    out = RuleChanges()
    assert out.touched(0, 0) is None  # before any read of every table, nothing is known
    for commit in commits:
        out.committed(commit)
    return out


def test_the_tables_of_every_change_in_between() -> None:
    found = changes(Commit(5, frozenset({NAT})), Commit(6, frozenset({DOCKER})), Commit(7, frozenset({NAT})))
    assert found.touched(4, 7) == {NAT: None, DOCKER: None}
    assert found.touched(6, 7) == {NAT: None}  # what came before the last read is forgotten
    assert found.touched(7, 7) == {}  # nothing since


def test_a_table_only_rule_notices_named_is_told_with_their_chains() -> None:
    def rules(generation: int, *chains: str) -> Commit:
        return Commit(generation, frozenset({DOCKER}), {DOCKER: frozenset(chains)})

    found = changes(rules(5, "nat-prerouting-and-output"), rules(6, "filter-FORWARD"), Commit(7, frozenset({NAT})))
    assert found.touched(4, 7) == {DOCKER: {"nat-prerouting-and-output", "filter-FORWARD"}, NAT: None}
    assert found.touched(5, 6) == {DOCKER: {"filter-FORWARD"}}
    # Any other notice (a chain, a set, the table) in one commit makes the table whole, whatever the others said.
    whole = changes(rules(5, "nat-POSTROUTING"), Commit(6, frozenset({DOCKER})), rules(7, "filter-FORWARD"))
    assert whole.touched(4, 7) == {DOCKER: None}


def test_a_change_not_seen_yet_or_one_that_named_no_table_is_not_known() -> None:
    assert changes(Commit(5, frozenset({NAT}))).touched(4, 6) is None  # generation 6's notices are not in yet
    assert changes(Commit(5, None)).touched(4, 5) is None
    assert changes(Commit(None, frozenset({NAT}))).touched(4, 5) is None
    assert changes(Commit(5, frozenset({NAT}))).touched(6, 5) is None  # the count went back


def test_lost_notices_and_other_changes_are_not_known_until_a_whole_read() -> None:
    lost = changes(Commit(5, frozenset({NAT})), None)
    assert lost.touched(4, 5) is None
    assert lost.touched(5, 5) == {}  # the read that was told None read everything
    legacy = changes(Commit(5, frozenset({NAT})))
    legacy.unknown()
    assert legacy.touched(4, 5) is None
    assert legacy.touched(4, 5) == {NAT: None}


def test_too_many_changes_between_two_reads_are_not_followed() -> None:
    many = changes(*(Commit(g, frozenset({NAT})) for g in range(1, MAX_COMMITS + 2)))
    assert many.touched(0, MAX_COMMITS + 1) is None
