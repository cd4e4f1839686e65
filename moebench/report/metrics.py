"""Statistics over scored samples: intervals for accuracy, latency spread, paired tests.

Pure functions over numbers and pandas frames (scipy/numpy, no hand-rolled distributions);
no I/O and no rendering. Every interval is 95% unless told otherwise, and every bootstrap
is seeded so that a report rebuilt from the same store prints the same numbers.

- accuracy: Wilson score interval (`wilson_interval`, closed form in `figures`);
  partial-credit mean score with a bootstrap interval (`mean_ci`);
- per group of samples: the summary CSV's figures (`summary_stats`), the same with
  intervals (`group_stats`), per task (`task_table`) and per model (`model_table`);
- repeats: pass@1 averaged over repeats, pass^N (every repeat passes), flaky cases
  (`repeat_consistency`);
- two models on the same cases: paired bootstrap interval of the accuracy difference and an
  exact McNemar test (`paired_test`);
- deterministic repeats (every repeat of every case gave the same output): accuracy and its
  interval count each case once (`deterministic_repeats`, used by `summary_stats`);
- power: the minimum detectable paired difference at 80% power and the cases needed to
  detect an observed gap (`min_detectable_difference`, `cases_needed`; Connor 1987);
- latency: p50/p95 with bootstrap intervals (`quantile_ci`), cold and warm apart
  (`model_table`), accuracy per second of request time;
- expert routing: load-balance coefficient of variation (`load_balance_cv`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from moebench.report import figures
from moebench.report.figures import wilson_interval  # noqa: F401  (public name, re-exported)

if TYPE_CHECKING:
    import pandas as pd

#: default number of bootstrap resamples: enough for stable 95% bounds, fast on 2 cores
N_RESAMPLES = 2000
#: default seed of every bootstrap (reports must be reproducible)
SEED = 0
#: above this many values BCa's O(n²) jackknife costs seconds and memory while its
#: correction no longer matters; the percentile method is used instead
BCA_MAX_N = 400
NO_DIFFERENCE = "no detectable difference at 95%"

_Stat = Callable[..., Any]


def _clean(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    """Values as a float array with NaN (missing timings, errors) dropped."""
    if hasattr(values, "to_numpy"):  # pandas: nullable Float64/Int64 and object None → NaN
        arr = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=float)
    return arr[~np.isnan(arr)]


def _bootstrap(data: tuple[np.ndarray, ...], statistic: _Stat, *, paired: bool,
               confidence: float, seed: int, method: str) -> tuple[float, float]:
    """scipy's bootstrap; falls back from BCa to percentile when BCa degenerates."""
    from scipy.stats import bootstrap

    if method == "BCa" and data[0].size > BCA_MAX_N:
        method = "percentile"
    with warnings.catch_warnings():
        # Small or lumpy samples make BCa warn and return NaN; we retry with percentile.
        warnings.simplefilter("ignore")
        for how in dict.fromkeys((method, "percentile")):
            res = bootstrap(data, statistic, paired=paired, vectorized=True,
                            confidence_level=confidence, n_resamples=N_RESAMPLES,
                            method=how, rng=np.random.default_rng(seed))
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
            if not (np.isnan(low) or np.isnan(high)):
                return (low, high)
    return (float("nan"), float("nan"))


def mean_ci(values: Sequence[float] | np.ndarray | pd.Series, confidence: float = 0.95,
            seed: int = SEED) -> tuple[float, float]:
    """Bootstrap interval of the mean, e.g. of partial-credit scores.

    BCa up to `BCA_MAX_N` values (better coverage for small, skewed samples), percentile
    above.
    NaN, NaN with fewer than two values; a zero-width interval when all values are equal
    (resampling cannot move the mean).
    """
    arr = _clean(values)
    if arr.size < 2:
        return (float("nan"), float("nan"))
    if np.ptp(arr) == 0:
        return (float(arr[0]), float(arr[0]))
    return _bootstrap((arr,), np.mean, paired=False, confidence=confidence, seed=seed,
                      method="BCa")


def quantile(values: Sequence[float] | np.ndarray | pd.Series, q: float) -> float:
    """The q-quantile (0.5 = median) of the non-missing values; NaN when there are none."""
    return figures.quantile(_clean(values).tolist(), q)  # the summary CSV's own quantile


def quantile_ci(values: Sequence[float] | np.ndarray | pd.Series, q: float,
                confidence: float = 0.95, seed: int = SEED) -> tuple[float, float]:
    """Percentile-bootstrap interval of the q-quantile (p50, p95 latency...).

    With few samples the interval of a high quantile is wide and biased low: that is the
    honest message (p95 of 10 requests is mostly the maximum). NaN, NaN with < 2 values.
    """
    arr = _clean(values)
    if arr.size < 2:
        return (float("nan"), float("nan"))
    if np.ptp(arr) == 0:
        return (float(arr[0]), float(arr[0]))

    def stat(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.quantile(x, q, axis=axis)

    return _bootstrap((arr,), stat, paired=False, confidence=confidence, seed=seed,
                      method="percentile")


def load_balance_cv(tokens: Sequence[float] | np.ndarray) -> float:
    """Coefficient of variation (std / mean) of tokens per expert: 0 = perfectly balanced.

    Population std (the experts are all there is, not a sample). NaN when nothing was routed.
    """
    arr = np.asarray(tokens, dtype=float)
    mean = arr.mean() if arr.size else 0.0
    return float(arr.std() / mean) if mean > 0 else float("nan")


@dataclass(frozen=True)
class PairedResult:
    """Two systems (models, or one model in two runs) on the same cases.

    `a_only`: cases A got right more often than B (with one repeat: A right, B wrong);
    `b_only` the reverse. `diff` = accuracy A − accuracy B with a paired bootstrap interval.
    `p_value`: exact two-sided McNemar test, i.e. a binomial test of `a_only` out of the
    discordant cases (with repeats: the exact sign test on per-case pass rates).
    """

    n: int
    acc_a: float
    acc_b: float
    diff: float
    diff_low: float
    diff_high: float
    a_only: int
    b_only: int
    p_value: float
    verdict: str


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value from the two discordant counts (1.0 when none)."""
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(a_only, discordant, 0.5).pvalue)


def paired_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                alpha: float = 0.05, seed: int = SEED) -> PairedResult:
    """Compare A and B on the same cases: per-case pass rates in [0, 1], aligned by case.

    With one repeat the rates are 0/1 verdicts and the test is McNemar's. The verdict is
    "A better" / "B better" only when the exact test rejects equality at `alpha`.
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError("paired_test needs the same cases for A and B")
    n = int(xa.size)
    if n == 0:
        nan = float("nan")
        return PairedResult(0, nan, nan, nan, nan, nan, 0, 0, 1.0, NO_DIFFERENCE)
    a_only, b_only = int(np.sum(xa > xb)), int(np.sum(xb > xa))
    diff = float(xa.mean() - xb.mean())
    low, high = _paired_diff_ci(xa, xb, seed)
    p = mcnemar_exact(a_only, b_only)
    verdict = NO_DIFFERENCE
    if p < alpha:
        verdict = "A better" if a_only > b_only else "B better"
    return PairedResult(n, float(xa.mean()), float(xb.mean()), diff, low, high,
                        a_only, b_only, p, verdict)


def _paired_diff_ci(xa: np.ndarray, xb: np.ndarray, seed: int) -> tuple[float, float]:
    """Paired bootstrap interval of mean(a) − mean(b): cases are resampled together."""
    d = xa - xb
    if d.size < 2 or np.ptp(d) == 0:
        value = float(d.mean())
        return (value, value) if d.size else (float("nan"), float("nan"))

    def stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    return _bootstrap((xa, xb), stat, paired=True, confidence=0.95, seed=seed, method="BCa")


def _connor_n(diff: float, discordant: float, alpha: float, power: float) -> float:
    """Cases a paired McNemar test needs to detect `diff` at `power` (Connor 1987)."""
    from scipy.stats import norm

    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    spread = max(discordant - diff * diff, 0.0)
    return float((z_a * np.sqrt(discordant) + z_b * np.sqrt(spread)) ** 2 / (diff * diff))


def min_detectable_difference(n: int, discordant: float, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """Smallest accuracy gap a paired McNemar test on `n` cases detects with `power`.

    `discordant` is the share of cases on which the two systems disagree (plug-in from the
    data). Solves Connor's sample-size formula for the difference (scipy's brentq). NaN
    when there is no disagreement to scale from, or when even a gap as large as the
    disagreement (one system right on every discordant case) needs more than `n` cases.
    """
    if n < 1 or not 0 < discordant <= 1:
        return float("nan")
    from scipy.optimize import brentq

    def excess(d: float) -> float:
        return _connor_n(d, discordant, alpha, power) - n

    if excess(discordant) > 0:
        return float("nan")
    return float(brentq(excess, 1e-9, discordant, xtol=1e-6))


def cases_needed(diff: float, discordant: float, alpha: float = 0.05,
                 power: float = 0.8) -> float:
    """About how many cases detect an observed gap `diff` (inf when there is no gap)."""
    if not np.isfinite(diff) or diff == 0 or discordant <= 0:
        return float("inf")
    return float(np.ceil(_connor_n(abs(diff), max(discordant, abs(diff)), alpha, power)))


def passed_bool(frame: pd.DataFrame) -> pd.Series:
    """The `passed` column as bool: missing verdicts (errors) count as failures."""
    from pandas.api.types import is_bool_dtype

    col = frame["passed"]
    if is_bool_dtype(col.dtype):  # bool, or the store's nullable "boolean"
        return col.fillna(False).astype(bool)
    text = col.astype("string").str.lower()
    return text.isin(["true", "1", "1.0"]).fillna(False).astype(bool)


def ok_mask(frame: pd.DataFrame) -> pd.Series:
    """True for samples that got an answer (no `error`); their timings are meaningful."""
    err = frame["error"].astype("string")
    return (err.isna() | (err == "")).fillna(True).astype(bool)


def repeat_consistency(samples: pd.DataFrame, by: Sequence[str] = ("model", "suite", "task"),
                       case: Sequence[str] = ("suite", "task", "case_id")) -> pd.DataFrame:
    """Per group: cases, repeats, pass@1 (averaged over repeats), pass^N and flaky cases.

    pass^N is the share of cases that pass in every one of their repeats; a case is flaky
    when its verdict differs between repeats. With one repeat pass^N == pass@1, flaky == 0.
    """
    import pandas as pd

    by, case = list(by), list(dict.fromkeys([*by, *case]))
    frame = samples.assign(_ok=passed_bool(samples).astype(float))
    per_case = frame.groupby(case, sort=False, dropna=False)["_ok"].agg(["mean", "size"])
    per_case = per_case.reset_index()
    rows = per_case.groupby(by, sort=False, dropna=False).agg(
        cases=("mean", "size"), repeats=("size", "max"), pass_at_1=("mean", "mean"),
        pass_all=("mean", lambda m: float((m == 1.0).mean())),
        flaky=("mean", lambda m: int(((m > 0) & (m < 1)).sum())),
    )
    return pd.DataFrame(rows).reset_index()


def _latency_stats(ok: pd.DataFrame, prefix: str = "latency") -> dict[str, float]:
    """p50/p95 of request latency with bootstrap intervals, over successful samples."""
    lat = ok["latency_s"]
    p50_lo, p50_hi = quantile_ci(lat, 0.5)
    p95_lo, p95_hi = quantile_ci(lat, 0.95)
    return {
        f"{prefix}_p50_s": quantile(lat, 0.5), f"{prefix}_p50_low": p50_lo,
        f"{prefix}_p50_high": p50_hi, f"{prefix}_p95_s": quantile(lat, 0.95),
        f"{prefix}_p95_low": p95_lo, f"{prefix}_p95_high": p95_hi,
    }


def warm_samples(ok: pd.DataFrame) -> pd.DataFrame:
    """Successful samples minus each model's cold first request (all of them if only cold).

    Used by `summary_stats`, so the summary CSV and the reports agree.
    """
    if "cold" not in ok or ok.empty:
        return ok
    cold = ok["cold"].fillna(False).astype(bool)
    return ok[~cold] if (~cold).any() else ok


_CASE = ["suite", "task", "case_id"]


def deterministic_repeats(samples: pd.DataFrame) -> bool:
    """`figures.repeats_are_deterministic` of a frame (per run and model, since models differ)."""
    return figures.repeats_are_deterministic(_verdict_rows(samples))


def _verdict_rows(samples: pd.DataFrame) -> list[dict[str, Any]]:
    """The columns the repeats check reads, `passed` as bool (missing verdicts False)."""
    cols = [c for c in ("run_id", "model", *_CASE, "repeat", "output") if c in samples]
    frame = samples[cols].astype(object).where(samples[cols].notna(), None)
    return [{**row, "passed": bool(ok)} for row, ok in
            zip(frame.to_dict("records"), passed_bool(samples).tolist(), strict=True)]


def _evidence(group: pd.DataFrame) -> tuple[int, int] | None:
    """(cases, passed cases) when the repeats are deterministic, else None (count samples)."""
    rows = _verdict_rows(group)
    return figures.case_evidence(rows) if figures.repeats_are_deterministic(rows) else None


def summary_stats(group: pd.DataFrame) -> dict[str, Any]:
    """The summary CSV's figures of one set of samples (`figures.summary_figures` of the
    frame's columns: the numbers `run` computes without pandas). No bootstrap, so every `run`
    can afford it; `group_stats` adds the intervals. `n`/`passed` count cases, not samples,
    when the repeats are deterministic (`deterministic_repeats`)."""
    cold = (group["cold"].fillna(False).astype(bool) if "cold" in group
            else [False] * len(group))
    timings = {c: group[c].astype(float).tolist() for c in ("latency_s", "ttft_s",
                                                            "tokens_per_s")}
    return figures.summary_figures(passed_bool(group).tolist(), group["score"].tolist(),
                                   ok_mask(group).tolist(), list(cold), timings,
                                   _evidence(group))


def group_stats(group: pd.DataFrame) -> dict[str, Any]:
    """`summary_stats` plus bootstrap intervals of the score and latency, and accuracy/s.

    `accuracy_per_s` = accuracy / mean warm latency = correct answers per second of request
    time. Keys in `group_stats_columns()` order.
    """
    warm = warm_samples(group[ok_mask(group)])
    stats = summary_stats(group)
    stats["mean_score_low"], stats["mean_score_high"] = mean_ci(
        group["score"].astype(float).fillna(0.0))
    stats |= _latency_stats(warm)
    mean_latency = float(warm["latency_s"].astype(float).mean()) if len(warm) else float("nan")
    stats["accuracy_per_s"] = (stats["accuracy"] / mean_latency if mean_latency > 0
                               else float("nan"))
    return {column: stats[column] for column in group_stats_columns()}


def _load_times(models: pd.DataFrame | None) -> dict[str, float]:
    """Model name → measured load time (the first run's, when a model appears in several)."""
    if models is None or models.empty or "load_s" not in models:
        return {}
    frame = models.dropna(subset=["load_s"]).drop_duplicates("model")
    return {str(m): float(s) for m, s in zip(frame["model"], frame["load_s"], strict=True)}


def task_table(samples: pd.DataFrame, models: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model × backend × suite × task: the summary CSV columns, then extras.

    Extras: score and latency intervals, `accuracy_per_s`, `repeats`, `pass_at_1` (mean
    over cases of the per-case pass rate; equals accuracy when every case has all its
    repeats), `pass_all` (pass^N) and `flaky` (cases whose verdict changed between repeats).
    """
    import pandas as pd

    from moebench.types import SUMMARY_COLUMNS

    keys = ["model", "backend", "suite", "task"]
    rows = [{**dict(zip(keys, key, strict=True)), **group_stats(g)}
            for key, g in samples.groupby(keys, sort=False, dropna=False)]
    table = pd.DataFrame(rows, columns=[*keys, *group_stats_columns()])
    loads = _load_times(models)
    table["load_s"] = [loads.get(str(m), float("nan")) for m in table["model"]]
    consistency = repeat_consistency(samples, by=keys)
    table = table.merge(consistency[[*keys, "repeats", "pass_at_1", "pass_all", "flaky"]],
                        on=keys, how="left")
    extras = [c for c in table.columns if c not in SUMMARY_COLUMNS]
    return table[[*SUMMARY_COLUMNS, *extras]]


def group_stats_columns() -> list[str]:
    """The keys `group_stats` returns, in order (for empty frames)."""
    lat = [f"latency_{p}_{s}" for p in ("p50", "p95") for s in ("s", "low", "high")]
    return ["n", "passed", "accuracy", "accuracy_low", "accuracy_high", "mean_score",
            "mean_score_low", "mean_score_high", *lat, "ttft_p50_s", "tokens_per_s",
            "errors", "accuracy_per_s"]


def model_table(samples: pd.DataFrame, models: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model, all its tasks pooled; warm latency and the cold request apart.

    `latency_*` are warm (see `warm_samples`); `cold_latency_s` is the mean of the cold
    (first) requests, which pay caches and graph warm-up; `tokens_per_s_low/high` bound the
    median tok/s (bootstrap). Accuracy pools cases, so bigger tasks weigh more.
    """
    import pandas as pd

    rows = []
    for (model, backend), g in samples.groupby(["model", "backend"], sort=False, dropna=False):
        ok = g[ok_mask(g)]
        cold = ok["cold"].fillna(False).astype(bool) if "cold" in ok else None
        tps_low, tps_high = quantile_ci(ok["tokens_per_s"], 0.5)
        rows.append({
            "model": model, "backend": backend, **group_stats(g),
            "cold_latency_s": float(ok.loc[cold, "latency_s"].astype(float).mean())
            if cold is not None and cold.any() else float("nan"),
            "tokens_per_s_low": tps_low, "tokens_per_s_high": tps_high,
        })
    table = pd.DataFrame(rows)
    loads = _load_times(models)
    if not table.empty:
        table["load_s"] = [loads.get(str(m), float("nan")) for m in table["model"]]
    return table


VARIANT_COLUMNS = ["model", "suite", "task", "originals", "sets", "acc_original",
                   "acc_variants", "drop", "set_min", "set_max", "set_sd"]
_VARIANT_ID = re.compile(r"^(?P<base>.+)-v(?P<k>\d+)$")


def variant_sets(samples: pd.DataFrame) -> pd.DataFrame:
    """`variant_rows` of a samples frame, as a frame (columns `VARIANT_COLUMNS`)."""
    import pandas as pd

    from moebench.report.figures import frame_rows

    return pd.DataFrame(variant_rows(frame_rows(samples)), columns=VARIANT_COLUMNS)


def variant_rows(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Robustness to re-instantiation (GSM-Symbolic): per model × task with variant cases.

    A case `<id>-v<k>` is instantiation k of case `<id>` of the same task (what
    `generate: {..., variants: K}` writes; `<id>` itself is instantiation 0, the original).
    Rows (`VARIANT_COLUMNS`): model, suite, task, originals (cases), sets (K + 1),
    acc_original, acc_variants, drop (original − variants), set_min, set_max, set_sd
    (accuracy across the K + 1 sets, sample std). Empty when no task has variants.
    `samples`: `Store.sample_rows()` dicts (no pandas).
    """
    groups: dict[tuple[Any, ...], list[tuple[str, str, int, float]]] = {}
    for row in samples:
        case = str(row["case_id"])
        found = _VARIANT_ID.match(case)
        base, k = (found["base"], int(found["k"])) if found else (case, 0)
        groups.setdefault((row["model"], row["suite"], row["task"]), []).append(
            (case, base, k, float(figures.passed_value(row["passed"]))))
    rows = []
    for (model, suite, task), g in groups.items():
        varied = {b for _, b, k, _ in g if k > 0} & {c for c, _, k, _ in g if k == 0}
        if not varied:
            continue
        by_set: dict[int, list[float]] = {}
        for _, base, k, ok in g:
            if base in varied:
                by_set.setdefault(k, []).append(ok)
        sets = [float(np.mean(by_set[k])) for k in sorted(by_set)]
        variants = float(np.mean([ok for k in by_set if k > 0 for ok in by_set[k]]))
        rows.append({"model": model, "suite": suite, "task": task, "originals": len(varied),
                     "sets": len(sets), "acc_original": sets[0], "acc_variants": variants,
                     "drop": sets[0] - variants, "set_min": min(sets), "set_max": max(sets),
                     "set_sd": float(np.std(sets, ddof=1)) if len(sets) > 1 else float("nan")})
    return rows
