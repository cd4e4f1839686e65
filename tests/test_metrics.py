"""Statistics against known values: Wilson, McNemar, bootstrap intervals, repeats, tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _report_frames import sample_row, samples_frame
from scipy.stats import bootstrap

from moebench.report import metrics
from moebench.types import SUMMARY_COLUMNS


@pytest.mark.parametrize(("passed", "n", "low", "high"), [
    (8, 10, 0.4902, 0.9433),     # the brief's anchor
    (81, 263, 0.2553, 0.3662),   # Newcombe (1998), Stat Med 17:857, example (i), method 3
    (15, 148, 0.0624, 0.1605),   # Newcombe (1998), example (ii)
    (0, 20, 0.0, 0.1611),        # Newcombe (1998), example (iii)
    (1, 29, 0.0061, 0.1718),     # Newcombe (1998), example (iv)
    (10, 10, 0.7225, 1.0),
])
def test_wilson_interval_matches_published_values(passed: int, n: int, low: float,
                                                  high: float) -> None:
    got = metrics.wilson_interval(passed, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
@pytest.mark.parametrize(("passed", "n"), [(0, 1), (1, 1), (3, 7), (0, 20), (20, 20), (57, 200)])
def test_wilson_interval_is_scipys_wilson(passed: int, n: int, confidence: float) -> None:
    from scipy.stats import binomtest

    ci = binomtest(passed, n).proportion_ci(confidence_level=confidence, method="wilson")
    got = metrics.wilson_interval(passed, n, confidence)
    assert got == pytest.approx((ci.low, ci.high), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("q", [0.0, 0.05, 0.5, 0.95, 1.0])
def test_plain_quantile_is_numpys_linear_quantile(seed: int, q: float) -> None:
    from moebench.report import figures

    values = np.random.default_rng(seed).lognormal(size=1 + seed * 7)
    assert figures.quantile([*values.tolist(), None, float("nan")], q) == float(
        np.quantile(values, q))


def test_wilson_interval_of_nothing_is_nan() -> None:
    assert all(math.isnan(v) for v in metrics.wilson_interval(0, 0))


@pytest.mark.parametrize(("a_only", "b_only", "p"), [
    (1, 7, 0.0703125),      # 2 · P(X ≤ 1), X ~ Bin(8, ½) = 2 · 9/256
    (0, 10, 2 / 1024),
    (5, 5, 1.0),
    (0, 0, 1.0),            # no discordant pair: nothing against equality
    (3, 0, 0.25),
])
def test_mcnemar_exact_p_values(a_only: int, b_only: int, p: float) -> None:
    assert metrics.mcnemar_exact(a_only, b_only) == pytest.approx(p)


def test_paired_test_counts_discordant_cases_and_decides() -> None:
    a = [1] * 10 + [0] * 2 + [1] * 8
    b = [0] * 10 + [1] * 2 + [1] * 8
    res = metrics.paired_test(a, b)
    assert (res.n, res.a_only, res.b_only) == (20, 10, 2)
    assert res.diff == pytest.approx(0.4)
    assert res.p_value == pytest.approx(metrics.mcnemar_exact(10, 2))
    assert res.p_value < 0.05 and res.verdict == "A better"
    assert res.diff_low <= res.diff <= res.diff_high and res.diff_low > 0
    flipped = metrics.paired_test(b, a)
    assert flipped.verdict == "B better" and flipped.diff == pytest.approx(-0.4)
    assert flipped.p_value == pytest.approx(res.p_value)


def test_paired_test_small_difference_is_not_a_winner() -> None:
    res = metrics.paired_test([1, 1, 1, 0, 1], [1, 0, 1, 0, 1])
    assert res.verdict == metrics.NO_DIFFERENCE and res.p_value == 1.0


def test_paired_test_identical_systems_have_zero_width_interval() -> None:
    res = metrics.paired_test([1, 0, 1], [1, 0, 1])
    assert (res.diff, res.diff_low, res.diff_high, res.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_test_rejects_misaligned_inputs() -> None:
    with pytest.raises(ValueError):
        metrics.paired_test([1, 0], [1])


def test_mean_ci_is_scipys_seeded_bca_bootstrap() -> None:
    scores = np.array([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 1.0, 0.5, 0.25, 1.0])
    low, high = metrics.mean_ci(scores)
    ref = bootstrap((scores,), np.mean, n_resamples=metrics.N_RESAMPLES, method="BCa",
                    rng=np.random.default_rng(metrics.SEED)).confidence_interval
    assert (low, high) == pytest.approx((ref.low, ref.high))
    assert low < scores.mean() < high
    assert metrics.mean_ci(scores) == (low, high)  # seeded: the same report twice


@pytest.mark.parametrize(("values", "expected"), [
    ([0.5, 0.5, 0.5], (0.5, 0.5)),   # nothing to resample
    ([1.0], None),                   # one value: no interval
    ([], None),
    ([float("nan"), 2.0], None),     # NaN dropped, one value left
])
def test_mean_ci_edge_cases(values: list[float], expected: tuple[float, float] | None) -> None:
    got = metrics.mean_ci(values)
    if expected is None:
        assert all(math.isnan(v) for v in got)
    else:
        assert got == expected


def test_quantile_ci_brackets_the_quantile_and_handles_nullable_columns() -> None:
    lat = pd.Series([1.0, 1.2, 0.9, 1.1, 5.0, 1.05, 0.95, None, 1.3, 1.15], dtype="Float64")
    p50 = metrics.quantile(lat, 0.5)
    low, high = metrics.quantile_ci(lat, 0.5)
    assert p50 == pytest.approx(1.1)
    assert low <= p50 <= high
    p95_low, p95_high = metrics.quantile_ci(lat, 0.95)
    assert p95_high <= 5.0 and p95_low >= 0.9


@pytest.mark.parametrize(("tokens", "cv"), [
    ([10, 10, 10, 10], 0.0),
    ([40, 0, 0, 0], math.sqrt(3)),   # one expert does everything
    ([1, 3], 0.5),
])
def test_load_balance_cv(tokens: list[int], cv: float) -> None:
    assert metrics.load_balance_cv(tokens) == pytest.approx(cv)


def test_load_balance_cv_of_no_tokens_is_nan() -> None:
    assert math.isnan(metrics.load_balance_cv([0, 0]))
    assert math.isnan(metrics.load_balance_cv([]))


def test_passed_bool_reads_every_stored_form() -> None:
    frame = pd.DataFrame({"passed": pd.array([True, None, False], dtype="boolean")})
    assert metrics.passed_bool(frame).tolist() == [True, False, False]
    text = pd.DataFrame({"passed": ["true", "false", None, "True"]})
    assert metrics.passed_bool(text).tolist() == [True, False, False, True]


def _repeats_frame() -> pd.DataFrame:
    verdicts = {"always": [1, 1, 1], "once": [0, 1, 0], "never": [0, 0, 0]}
    return samples_frame([sample_row(case_id=c, repeat=r + 1, passed=bool(v), score=float(v))
                          for c, vs in verdicts.items() for r, v in enumerate(vs)])


def test_repeat_consistency_pass_at_1_pass_all_and_flaky() -> None:
    row = metrics.repeat_consistency(_repeats_frame()).iloc[0]
    assert (row["cases"], row["repeats"], row["flaky"]) == (3, 3, 1)
    assert row["pass_at_1"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert row["pass_all"] == pytest.approx(1 / 3)


def _timed_frame() -> pd.DataFrame:
    rows = [sample_row(case_id="c0", latency_s=10.0, cold=True, ttft_s=3.0),
            *(sample_row(case_id=f"c{i}", latency_s=1.0 + i / 10, ttft_s=0.1)
              for i in range(1, 8)),
            sample_row(case_id="c8", passed=False, score=0.5, latency_s=1.2),
            sample_row(case_id="c9", passed=None, score=None, latency_s=None, ttft_s=None,
                       tokens_per_s=None, error="timeout after 30 s")]
    return samples_frame(rows)


def test_task_table_has_the_csv_columns_first_and_honest_numbers() -> None:
    models = pd.DataFrame([{"model": "m", "load_s": 4.5}])
    table = metrics.task_table(_timed_frame(), models)
    assert tuple(table.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    row = table.iloc[0]
    assert (row["n"], row["passed"], row["errors"]) == (10, 8, 1)
    assert row["accuracy"] == pytest.approx(0.8)           # the error counts as a failure
    assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx(
        metrics.wilson_interval(8, 10))
    assert row["mean_score"] == pytest.approx(8.5 / 10)    # error scores 0
    warm = [1.0 + i / 10 for i in range(1, 8)] + [1.2]     # cold 10 s request left out
    assert row["latency_p50_s"] == pytest.approx(np.median(warm))
    assert row["ttft_p50_s"] == pytest.approx(0.1)
    assert row["load_s"] == 4.5 and row["repeats"] == 1 and row["flaky"] == 0
    assert row["accuracy_per_s"] == pytest.approx(0.8 / np.mean(warm))


def test_model_table_keeps_cold_and_warm_apart() -> None:
    row = metrics.model_table(_timed_frame()).iloc[0]
    assert row["cold_latency_s"] == pytest.approx(10.0)
    assert row["latency_p95_s"] < 10.0
    assert row["tokens_per_s_low"] <= row["tokens_per_s"] <= row["tokens_per_s_high"]


def test_tables_of_a_model_with_only_errors() -> None:
    frame = samples_frame([sample_row(passed=None, score=None, latency_s=None, ttft_s=None,
                                      tokens_per_s=None, error="boom")])
    row = metrics.task_table(frame).iloc[0]
    assert (row["n"], row["passed"], row["errors"], row["accuracy"]) == (1, 0, 1, 0.0)
    assert math.isnan(row["latency_p50_s"]) and math.isnan(row["accuracy_per_s"])
