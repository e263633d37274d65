"""`python -m tests.differential --rulesets 500 --seed S [--backends iptables-nft,iptables-legacy,nftables]`

Exit status: 0 when portscope's reach agrees with the kernel on every probe, 1 otherwise (a disagreement, a
refused ruleset, or the kernel differing from the harness's own rule model), 2 for bad usage or not root.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from tests.differential import report
from tests.differential.backend import BACKENDS, Backend
from tests.differential.run import RulesetRun, run_all


def _backends(text: str) -> list[Backend]:
    chosen = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(BACKENDS)}")
    return chosen  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential", description=__doc__.splitlines()[0])
    parser.add_argument("--rulesets", type=int, default=100, help="how many rulesets per backend (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="the first ruleset's index (to replay one)")
    parser.add_argument("--backends", type=_backends, default=list(BACKENDS), help="comma-separated")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds a probe waits for its answer")
    parser.add_argument("--show", type=int, default=20, help="failed rulesets printed in full (0: all)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so every namespace is removed
    shown = 0

    def progress(run: RulesetRun) -> None:
        nonlocal shown
        if report.failed(run) and (args.show == 0 or shown < args.show):
            shown += 1
            print(report.details(run), flush=True)

    started = time.monotonic()
    try:
        runs = run_all(args.backends, args.seed, range(args.start, args.start + args.rulesets), timeout=args.timeout,
                       on_ruleset=progress)  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted; namespaces removed", file=sys.stderr)
        return 130
    failed = [r for r in runs if report.failed(r)]
    if len(failed) > shown:
        print(f"({len(failed) - shown} more failed rulesets not shown; --show 0 prints all)")
    print(report.summary(runs))
    print(f"{time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
