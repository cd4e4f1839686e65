"""Model vs model in the terminal (with the minimum detectable difference), deterministic
repeats counted once (issue 18.1), `--compare` without common cases (issue 18.2), and the
robustness (variants) table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.report import compare, metrics
from _report_frames import demo_samples, fill_store, sample_row, samples_frame

runner = CliRunner()


def _deterministic(repeats: int = 3, cases: int = 21, right: int = 2) -> pd.DataFrame:
    """`right` of `cases` pass, every repeat identical (seed fixed at temperature 0)."""
    return samples_frame([sample_row(case_id=f"c{c}", repeat=r, passed=c < right,
                                     score=float(c < right), output=f"out {c}")
                          for c in range(cases) for r in range(1, repeats + 1)])


def test_identical_repeats_count_each_case_once() -> None:
    frame = _deterministic()
    assert metrics.deterministic_repeats(frame)
    stats = metrics.summary_stats(frame)
    assert (stats["n"], stats["passed"]) == (21, 2)  # was 63 / 6
    low, high = stats["accuracy_low"], stats["accuracy_high"]
    assert (round(low * 100), round(high * 100)) == (3, 29)  # not the narrower 4–19%
    assert stats["errors"] == 0


def test_varying_repeats_keep_every_sample() -> None:
    frame = demo_samples(repeats=3, models=(("m", 0.5, 10.0),), tasks=("t",))
    assert not metrics.deterministic_repeats(frame)
    assert metrics.summary_stats(frame)["n"] == 36
    assert not metrics.deterministic_repeats(_deterministic(repeats=1))


def test_report_says_once_that_repeats_are_deterministic(tmp_path: Path) -> None:
    fill_store(tmp_path, "r1", _deterministic())
    result = runner.invoke(app, ["report", "r1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("repeats are deterministic: timing spread only") == 1
    assert "2/21" in result.output and "3–29%" in result.output


def test_min_detectable_difference_shrinks_with_n() -> None:
    small = metrics.min_detectable_difference(32, 0.3)
    big = metrics.min_detectable_difference(264, 0.3)
    assert 0.2 < small < 0.3 and 0.08 < big < 0.11
    # the MDD's own n reproduces it (Connor's formula inverted)
    assert metrics.cases_needed(big, 0.3) == pytest.approx(264, abs=1)
    assert metrics.min_detectable_difference(5, 0.1) != metrics.min_detectable_difference(5, 0.1)
    assert metrics.cases_needed(0.0, 0.2) == float("inf")


def test_model_pairs_best_against_each_other() -> None:
    frame = compare.model_pairs(demo_samples())
    tasks = list(dict.fromkeys(frame["task"]))
    assert tasks == ["arithmetic", "entities", "all"]
    for task, rows in frame.groupby("task"):
        assert len(rows) == 2 and rows["model_a"].nunique() == 1
        assert (rows["acc_a"] >= rows["acc_b"]).all()  # A is the best model of the task
    assert frame["mdd"].notna().any() and (frame["n_needed"] > 0).all()
    every = compare.model_pairs(demo_samples(), pairs="all")
    assert len(every) == 3 * 3


def test_report_prints_model_vs_model_with_mdd(tmp_path: Path) -> None:
    fill_store(tmp_path, "r1", demo_samples(cases=30))
    result = runner.invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "model vs model, same cases (best model vs each other)" in out
    assert "MDD" in out and "minimum detectable difference at 80% power" in out
    assert "n too small:" in out or "better" in out
    assert "cases would detect this gap" in out or "better" in out
    every = runner.invoke(app, ["report", "--out", str(tmp_path), "--pairs", "all"])
    assert "every pair" in every.output


def test_single_model_report_has_no_pair_table(tmp_path: Path) -> None:
    fill_store(tmp_path, "r1", demo_samples(models=(("m", 0.5, 10.0),)))
    result = runner.invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 0 and "model vs model" not in result.output


def test_compare_without_common_cases_is_one_line_and_exit_1(tmp_path: Path) -> None:
    fill_store(tmp_path, "r1", demo_samples())
    other = demo_samples(run_id="r2").assign(case_id=lambda f: "other-" + f["case_id"])
    fill_store(tmp_path, "r2", other)
    result = runner.invoke(app, ["report", "--compare", "r1", "last", "--out", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "share no cases" in lines[0] and "r2" in lines[0]


def test_compare_titles_name_resolved_run_ids(tmp_path: Path) -> None:
    fill_store(tmp_path, "r1", demo_samples(seed=1))
    fill_store(tmp_path, "r2", demo_samples(seed=2, run_id="r2"))
    result = runner.invoke(app, ["report", "--compare", "r1", "last", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "r1 (A) vs r2 (B)" in result.output and "last (" not in result.output


def test_variant_sets_show_originals_against_variants() -> None:
    rows = []
    for base in range(10):
        for k in range(4):
            case = f"g-{base:04d}-change" + (f"-v{k}" if k else "")
            ok = k == 0 or (base + k) % 2 == 0  # originals all right, variants half
            rows.append(sample_row(case_id=case, passed=ok, score=float(ok)))
    table = metrics.variant_sets(samples_frame(rows))
    row = table.iloc[0]
    assert (row["originals"], row["sets"]) == (10, 4)
    assert row["acc_original"] == 1.0 and row["acc_variants"] == pytest.approx(0.5)
    assert row["drop"] == pytest.approx(0.5) and row["set_min"] < row["set_max"]
    assert metrics.variant_sets(demo_samples()).empty


def test_report_shows_the_robustness_table(tmp_path: Path) -> None:
    rows = [sample_row(case_id=f"g-{b}" + (f"-v{k}" if k else ""), passed=k == 0,
                       score=float(k == 0)) for b in range(5) for k in range(3)]
    fill_store(tmp_path, "r1", samples_frame(rows))
    result = runner.invoke(app, ["report", "--out", str(tmp_path)])
    assert "robustness to new names and numbers" in result.output
    assert "100.0%" in result.output and "+100.0" in result.output


def test_html_and_markdown_carry_the_mdd() -> None:
    from moebench.report.html_report import render_html
    from moebench.report.markdown_report import render_markdown

    text = render_markdown(demo_samples())
    assert "MDD (pts)" in text and "±" in text
    page = render_html(demo_samples())
    assert "MDD ±" in page and "minimum detectable difference" in page
