"""One differential check: load a ruleset, ask portscope, send the probes, compare; and whole runs of them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from tests.differential import backend, simulate, topology
from tests.differential.backend import Backend
from tests.differential.generate import generate, ruleset_rng
from tests.differential.model import Ruleset
from tests.differential.predict import Prediction, predict
from tests.differential.probe import Probe, grid
from tests.differential.topology import Topology
from tests.sandbox.list_cli import portscope

Verdict = Literal["agree", "disagree", "uncertain"]
CONFIRM_TIMEOUT = 2.0  # a probe whose answer differs is sent again, once, with this timeout


@dataclass(frozen=True)
class Outcome:
    """One probe: what the kernel did, what portscope predicted, and what the rule model itself says."""

    probe: Probe
    observed: str | None
    prediction: Prediction
    modelled: str | None = None  # simulate.expected_answer ...
    has_model: bool = False  # ... when the abstract ruleset is known (not for a replayed text)

    @property
    def predicted(self) -> str | None:
        return self.prediction.expected(self.probe)

    @property
    def verdict(self) -> Verdict:
        if self.prediction.uncertain:
            return "uncertain"
        if self.prediction.ambiguous or self.predicted != self.observed:
            return "disagree"
        return "agree"

    @property
    def harness_mismatch(self) -> bool:
        """The kernel did not do what the rule model says: a harness bug, not portscope's."""
        return self.has_model and self.modelled != self.observed

    def expected_text(self) -> str:
        if self.prediction.ambiguous:
            return f"{len(self.prediction.bindings)} bindings"
        return repr(self.predicted)

    def explain(self) -> str:
        claims = ", ".join(b["id"] for b in self.prediction.bindings) or "no binding"
        expected = self.expected_text()
        return f"{self.probe}: portscope predicts {expected} ({claims}), the kernel answered {self.observed!r}"

    def kind(self) -> str:
        """The kind of disagreement, for counting."""
        if self.prediction.ambiguous:
            return "overlapping reaches"
        if self.observed is None:
            return "predicted an answer, the kernel gave none"
        if self.predicted is None:
            return "predicted no answer, the kernel answered"
        return "predicted another target"


@dataclass
class RulesetRun:
    """One ruleset on one backend."""

    backend: Backend
    seed: int
    index: int
    ruleset: Ruleset | None
    text: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    bindings: list[dict] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        return sum(o.verdict == verdict for o in self.outcomes)

    def disagreements(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict == "disagree"]

    def harness_mismatches(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.harness_mismatch]


def check_text(
    topo: Topology, which: Backend, text: str, probes: list[Probe], timeout: float, ruleset: Ruleset | None = None
) -> tuple[list[Outcome], list[dict]]:
    """Load `text`, read portscope's bindings, probe; the outcomes and the bindings.

    Raises backend.LoadError when the ruleset is refused.
    """
    backend.clear(topo.host, which)
    backend.load(topo.host, which, text)
    bindings = json.loads(portscope(topo.host, "list", "--json").stdout)["bindings"]
    predictions = [predict(bindings, p) for p in probes]
    modelled = [simulate.expected_answer(ruleset, p) if ruleset else None for p in probes]
    observed = topo.observe(probes, timeout)
    # An answer is proof; no answer may be one that came late: ask once more, slowly, before calling it a finding.
    again = [
        i
        for i, p in enumerate(probes)
        if observed[i] is None and (predictions[i].expected(p) is not None or modelled[i] is not None)
    ]
    if again:
        for i, got in zip(again, topo.observe([probes[i] for i in again], CONFIRM_TIMEOUT), strict=True):
            observed[i] = got
    has_model = ruleset is not None
    outcomes = [Outcome(p, observed[i], predictions[i], modelled[i], has_model) for i, p in enumerate(probes)]
    return outcomes, bindings


def check_ruleset(topo: Topology, which: Backend, seed: int, index: int, timeout: float) -> RulesetRun:
    """Ruleset `index` of `seed` on one backend, every grid probe."""
    started = time.monotonic()
    ruleset = generate(ruleset_rng(seed, index), allow_drop=which == "nftables")
    text = backend.render(which, ruleset)
    run = RulesetRun(which, seed, index, ruleset, text)
    try:
        run.outcomes, run.bindings = check_text(topo, which, text, grid(), timeout, ruleset)
    except backend.LoadError as e:
        run.error = str(e)
    except subprocess.CalledProcessError as e:
        run.error = f"portscope list --json failed ({e.returncode}): {e.stderr.strip()}"
    run.seconds = time.monotonic() - started
    return run


def run_all(
    backends: Iterable[Backend],
    seed: int,
    indices: Iterable[int],
    *,
    timeout: float = 0.5,
    on_ruleset: Callable[[RulesetRun], None] | None = None,
) -> list[RulesetRun]:
    """Every ruleset on every backend; one topology per backend, removed again whatever happens."""
    runs = []
    indices = list(indices)
    for which in backends:
        topo = topology.start()
        try:
            for index in indices:
                run = check_ruleset(topo, which, seed, index, timeout)
                runs.append(run)
                if on_ruleset is not None:
                    on_ruleset(run)
        finally:
            topology.stop(topo)
    return runs
