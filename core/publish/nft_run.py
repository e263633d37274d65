"""One `nft -f` batch run atomically, and nft's error as one line."""

from __future__ import annotations

import subprocess

from portscope.core.errors import ToolError
from portscope.core.publish.errors import RuleRefusedError


def run_batch(nft: str, batch: str, what: str) -> None:
    """Run `batch` with `nft -f -`; RuleRefusedError (nothing changed) names `what` when the kernel refuses it."""
    try:
        result = subprocess.run([nft, "-f", "-"], input=batch, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"nft: {exc}") from None
    if result.returncode != 0:
        reason = nft_error(result.stderr or result.stdout) or f"exit status {result.returncode}"
        raise RuleRefusedError(f"the kernel refused {what} ({reason}); nothing was changed")


def nft_error(text: str) -> str:
    """nft's error as one line: `Error: ...` lines without their `/dev/stdin:3:1-20:` position prefix."""
    errors = [line.split("Error:", 1)[1].strip() for line in text.splitlines() if "Error:" in line]
    lines = errors or [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines)[:400]
