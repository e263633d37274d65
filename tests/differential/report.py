"""Text for people: the totals of a run, each disagreement with its ruleset, and a regression test for it."""

from __future__ import annotations

import json
from collections import Counter

from tests.differential import render_iptables, render_nft
from tests.differential.predict import reach_of
from tests.differential.run import Outcome, RulesetRun

PROBES_SHOWN = 6  # per ruleset; the rest are counted
LINE_LENGTH = 120  # the project's ruff line length


def summary(runs: list[RulesetRun]) -> str:
    """Totals per backend and overall, with the time per ruleset."""
    lines = []
    for which in dict.fromkeys(r.backend for r in runs):
        mine = [r for r in runs if r.backend == which]
        lines.append(f"{which:16} {_counts(mine)}  {sum(r.seconds for r in mine) / len(mine):.2f} s/ruleset")
    probes = sum(len(r.outcomes) for r in runs)
    backends = len({r.backend for r in runs})
    rulesets = len({r.index for r in runs})
    per = probes // max(1, len([r for r in runs if r.outcomes]))
    lines.append(f"total: {rulesets} rulesets x {per} probes x {backends} backends = {probes} probes; {_counts(runs)}")
    kinds = Counter(o.kind() for r in runs for o in r.disagreements())
    lines += [f"  {n:6} {kind}" for kind, n in kinds.most_common()]
    return "\n".join(lines)


def _counts(runs: list[RulesetRun]) -> str:
    agree = sum(r.count("agree") for r in runs)
    disagree = sum(r.count("disagree") for r in runs)
    uncertain = sum(r.count("uncertain") for r in runs)
    harness = sum(len(r.harness_mismatches()) for r in runs)
    errors = sum(r.error is not None for r in runs)
    bad = sum(bool(r.disagreements()) for r in runs)
    return (
        f"agree {agree}, disagree {disagree} (in {bad} rulesets), uncertain {uncertain}, "
        f"harness mismatches {harness}, errors {errors}"
    )


def failed(run: RulesetRun) -> bool:
    return bool(run.error or run.disagreements() or run.harness_mismatches())


def details(run: RulesetRun) -> str:
    """A failed ruleset: both renderings, each disagreeing probe with the bindings that claim it, a test."""
    head = f"=== {run.backend}, seed {run.seed}, ruleset {run.index}"
    out = [head + "=" * max(3, 100 - len(head)), *_renderings(run)]
    if run.error:
        out.append(f"ERROR: {run.error}")
        return "\n".join(out)
    for o in run.harness_mismatches()[:PROBES_SHOWN]:
        out.append(f"HARNESS: {o.probe}: the kernel answered {o.observed!r}, the rule model says {o.modelled!r}")
    bad = run.disagreements()
    for o in bad[:PROBES_SHOWN]:
        out.append(f"probe {o.probe}: expected {o.expected_text()}, observed {o.observed!r} ({o.kind()})")
        for b in o.prediction.bindings:
            summary = reach_of(b).get("summary", "(no reach in the JSON)")
            out.append(f"    binding {b['id']} hooks={b['hooks']} reach: {summary}")
            out += [f"        rule {r['chain']}#{r['position']}: {r['text']}" for r in b["evidence"]["rules"]]
    if len(bad) > PROBES_SHOWN:
        out.append(f"... and {len(bad) - PROBES_SHOWN} more disagreeing probes")
    if bad:
        out += ["--- regression test:", regression_test(run, bad[0])]
    return "\n".join(out)


def _renderings(run: RulesetRun) -> list[str]:
    out = ["--- loaded:", run.text.rstrip()]
    if run.ruleset is None:
        return out
    if run.backend == "nftables":
        if run.ruleset.uses_drop():
            return [*out, "--- as iptables: (none: iptables' nat table has no DROP)"]
        return [*out, "--- as iptables-restore:", render_iptables.render(run.ruleset).rstrip()]
    return [*out, "--- as nft:", render_nft.render(run.ruleset).rstrip()]


def regression_test(run: RulesetRun, o: Outcome) -> str:
    """A pytest function that replays the ruleset and the probe, for tests/integration/."""
    p = o.probe
    name = f"test_differential_seed{run.seed}_ruleset{run.index}_{run.backend.replace('-', '_')}_{p.side}_{p.protocol}"
    probe = ", ".join(json.dumps(v) for v in (p.side, p.protocol, p.saddr, p.daddr, p.port))
    observed = "is None" if o.observed is None else f"== {json.dumps(o.observed)}"
    code = f'''from tests.conftest import need_root_tools
from tests.differential.backend import TOOLS
from tests.differential.probe import Probe
from tests.differential.replay import replay

RULES = """\\
{run.text.rstrip()}
"""


def {name}_{p.port}() -> None:
    """The kernel and portscope's reach disagreed on this probe."""
    # found by: python -m tests.differential --seed {run.seed} --start {run.index} --rulesets 1 --backends {run.backend}
    need_root_tools(*TOOLS)
    outcome = replay("{run.backend}", RULES, Probe({probe}))
    assert outcome.observed {observed}  # what the kernel did when this was found
    assert outcome.verdict == "agree", outcome.explain()'''
    if any(len(line) > LINE_LENGTH for line in code.splitlines()):
        code = "# ruff: noqa: E501 (rule lines are kept whole)\n" + code
    return code
