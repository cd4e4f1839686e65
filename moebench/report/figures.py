"""The summary's figures in plain Python: accuracy with its Wilson interval, warm quantiles.

`moebench run` prints its table and writes its summary CSV from these, so a plain run imports
neither numpy, pandas nor scipy (about 0.3 s and 1 s of start-up); `metrics.summary_stats`
feeds them a frame's columns, so the terminal table, the CSVs and the HTML/Markdown reports
share one implementation. Intervals are 95% unless told otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import NormalDist
from typing import Any

#: the two-sided 95% normal quantile, Φ⁻¹(0.975)
Z_95 = 1.959963984540054


def wilson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for `passed` successes out of `n` (NaN, NaN when n == 0).

    Closed form (Wilson 1927): the numbers of scipy's `binomtest(...).proportion_ci(
    method="wilson")` without importing scipy.
    """
    if n == 0:
        return (float("nan"), float("nan"))
    z = Z_95 if confidence == 0.95 else NormalDist().inv_cdf(0.5 + confidence / 2)
    p = passed / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / n + (z / (2 * n)) ** 2)
    return (max(0.0, centre - half), min(1.0, centre + half))


def missing(value: Any) -> bool:
    """None or NaN (a missing timing)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def quantile(values: Iterable[float | None], q: float) -> float:
    """The q-quantile of the non-missing values (numpy's default "linear" method, to the
    bit); NaN when there are none."""
    data = sorted(float(v) for v in values if not missing(v))
    if not data:
        return float("nan")
    h = (len(data) - 1) * q
    low = math.floor(h)
    if low + 1 >= len(data):
        return data[-1]
    a, b, t = data[low], data[low + 1], h - low
    # numpy's _lerp: from the nearer end, so the result stays within [a, b]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def summary_figures(passed: Sequence[bool], scores: Sequence[float | None],
                    ok: Sequence[bool], cold: Sequence[bool],
                    timings: dict[str, Sequence[float | None]]) -> dict[str, Any]:
    """The summary CSV's figures (SUMMARY_COLUMNS `n`…`errors`, no load_s) of one group.

    Columns aligned by sample: `passed` (missing verdicts already False), `scores`, `ok` (got
    an answer), `cold` (first request of a model); `timings` holds `latency_s`, `ttft_s` and
    `tokens_per_s`. Errors count as failed samples in accuracy (score 0) and are left out of
    timings; latency and TTFT are warm (`warm_index`), tok/s is the median over every answer.
    """
    n, k = len(passed), sum(bool(p) for p in passed)
    answered = [i for i in range(n) if ok[i]]
    warm = warm_index(answered, cold)
    low, high = wilson_interval(k, n)
    return {
        "n": n, "passed": k, "accuracy": k / n if n else float("nan"),
        "accuracy_low": low, "accuracy_high": high,
        "mean_score": sum(0.0 if missing(s) else float(s) for s in scores) / n if n
        else float("nan"),
        "latency_p50_s": quantile((timings["latency_s"][i] for i in warm), 0.5),
        "latency_p95_s": quantile((timings["latency_s"][i] for i in warm), 0.95),
        "ttft_p50_s": quantile((timings["ttft_s"][i] for i in warm), 0.5),
        "tokens_per_s": quantile((timings["tokens_per_s"][i] for i in answered), 0.5),
        "errors": n - len(answered),
    }


def warm_index(answered: Sequence[int], cold: Sequence[bool]) -> list[int]:
    """The answered samples minus each model's cold first request (all if only cold)."""
    warm = [i for i in answered if not cold[i]]
    return warm or list(answered)
