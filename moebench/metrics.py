"""Statistics over scored samples: intervals for accuracy, latency spread, paired tests.

Pure functions over numbers and pandas frames (scipy/numpy, no hand-rolled distributions);
no I/O and no rendering.
"""

from __future__ import annotations

from scipy.stats import binomtest


def wilson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for `passed` successes out of `n` (NaN, NaN when n == 0)."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(passed, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))
