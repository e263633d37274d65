"""Hypothesis settings for the fuzz suite: a fixed, derandomized profile for CI (~2 minutes in all).

`PORTSCOPE_FUZZ_PROFILE=deep` runs many more examples, randomized, for a local hunt. The profiles are
applied per test (`@FUZZ`), never loaded globally, so other suites keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # a subprocess per example: the 20 s bound is the subprocess timeout
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "database": None,
}
settings.register_profile("portscope-fuzz-ci", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("portscope-fuzz-deep", max_examples=500, **_COMMON)

FUZZ = settings.get_profile(f"portscope-fuzz-{os.environ.get('PORTSCOPE_FUZZ_PROFILE', 'ci')}")
