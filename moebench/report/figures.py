"""The summary's figures in plain Python: accuracy with its Wilson interval, warm quantiles.

`moebench run` prints its table and writes its summary CSV from these, so a plain run imports
neither numpy, pandas nor scipy (about 0.3 s and 1 s of start-up); `metrics.summary_stats`
feeds them a frame's columns, so the terminal table, the CSVs and the HTML/Markdown reports
share one implementation. Intervals are 95% unless told otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
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


def frame_rows(frame: Any) -> list[dict[str, Any]]:
    """A pandas frame's rows as dicts with its missing values (NA, NaN, NaT) as None."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def passed_value(value: Any) -> bool:
    """A stored verdict as bool: missing verdicts (errors) count as failures; text verdicts
    (`true`, `1`) from CSV-built frames are read as such."""
    if missing(value):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "1.0")
    return bool(value)


def quantile(values: Iterable[float | None], q: float) -> float:
    """The q-quantile of the non-missing values (numpy's default "linear" method, to the
    bit); NaN when there are none."""
    data = sorted(x for x in (float(v) for v in values if v is not None) if x == x)  # no NaN
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
                    timings: dict[str, Sequence[float | None]],
                    evidence: tuple[int, int] | None = None) -> dict[str, Any]:
    """The summary CSV's figures (SUMMARY_COLUMNS `n`…`errors`, no load_s) of one group.

    Columns aligned by sample: `passed` (missing verdicts already False), `scores`, `ok` (got
    an answer), `cold` (first request of a model); `timings` holds `latency_s`, `ttft_s` and
    `tokens_per_s`. Errors count as failed samples in accuracy (score 0) and are left out of
    timings; latency and TTFT are warm (`warm_index`), tok/s is the median over every answer.
    `evidence`: (cases, passed cases) to count instead of samples in `n`, `passed`, accuracy
    and its interval, when the repeats are deterministic (`case_evidence`).
    """
    samples = len(passed)
    n, k = evidence or (samples, sum(bool(p) for p in passed))
    answered = [i for i in range(samples) if ok[i]]
    warm = warm_index(answered, cold)
    low, high = wilson_interval(k, n)
    return {
        "n": n, "passed": k, "accuracy": k / n if n else float("nan"),
        "accuracy_low": low, "accuracy_high": high,
        "mean_score": sum(0.0 if missing(s) else float(s) for s in scores) / samples
        if samples else float("nan"),
        "latency_p50_s": quantile((timings["latency_s"][i] for i in warm), 0.5),
        "latency_p95_s": quantile((timings["latency_s"][i] for i in warm), 0.95),
        "ttft_p50_s": quantile((timings["ttft_s"][i] for i in warm), 0.5),
        "tokens_per_s": quantile((timings["tokens_per_s"][i] for i in answered), 0.5),
        "errors": samples - len(answered),
    }


def warm_index(answered: Sequence[int], cold: Sequence[bool]) -> list[int]:
    """The answered samples minus each model's cold first request (all if only cold)."""
    warm = [i for i in answered if not cold[i]]
    return warm or list(answered)


_CASE_KEY = ("run_id", "model", "suite", "task", "case_id")


def _case(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in _CASE_KEY)


def repeats_are_deterministic(rows: Sequence[Mapping[str, Any]]) -> bool:
    """True when cases were repeated and every repeat of each case (per run and model) gave the
    same output and verdict: such repeats (fixed seed at temperature 0) are one piece of
    evidence per case, not `repeats` pieces; they only add timing samples."""
    if not rows or max(int(r.get("repeat") or 1) for r in rows) <= 1:
        return False
    seen: dict[tuple[Any, ...], tuple[str, bool]] = {}
    for row in rows:
        output = row.get("output")
        value = ("" if missing(output) else str(output), row.get("passed") is True)
        if seen.setdefault(_case(row), value) != value:
            return False
    return True


def case_evidence(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(cases, passed cases): each case counted once, by its first repeat's verdict."""
    first: dict[tuple[Any, ...], bool] = {}
    for row in rows:
        first.setdefault(_case(row), row.get("passed") is True)
    return len(first), sum(first.values())


def token_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Median prompt and output tokens of answered samples, and median prefill speed (prompt
    tokens / server prompt-eval time, per sample where both are known), as
    `ollama run --verbose` shows them."""
    prefill = [float(r["prompt_tokens"]) / float(r["prompt_eval_s"]) for r in rows
               if not missing(r.get("prompt_tokens")) and not missing(r.get("prompt_eval_s"))
               and float(r["prompt_eval_s"]) > 0]
    return {"prompt_tokens_p50": quantile((r.get("prompt_tokens") for r in rows), 0.5),
            "output_tokens_p50": quantile((r.get("output_tokens") for r in rows), 0.5),
            "prefill_tokens_per_s": quantile(prefill, 0.5)}
