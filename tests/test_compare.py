"""Paired comparisons: model vs model on common cases, one model across runs, the store path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _report_frames import demo_samples, fill_store, sample_row, samples_frame

from moebench.report import compare
from moebench.errors import MoebenchError, RunNotFound
from moebench.report.metrics import NO_DIFFERENCE, mcnemar_exact


def _frame(verdicts: dict[str, list[int]], run_id: str = "r1", task: str = "t",
           repeats: int = 1) -> pd.DataFrame:
    """model → per-case verdicts (cases c0, c1, ...), each verdict repeated `repeats` times."""
    return samples_frame([sample_row(run_id=run_id, model=m, task=task, case_id=f"c{i}",
                                     repeat=r, passed=bool(v))
                          for m, vs in verdicts.items() for i, v in enumerate(vs)
                          for r in range(1, repeats + 1)])


def test_paired_matrix_one_row_per_pair_with_mcnemar() -> None:
    frame = _frame({"big": [1] * 12, "small": [1, 1] + [0] * 10, "tiny": [0] * 12})
    table = compare.paired_matrix(frame)
    assert list(zip(table["model_a"], table["model_b"], strict=True)) == [
        ("big", "small"), ("big", "tiny"), ("small", "tiny")]
    first = table.iloc[0]
    assert (first["n"], first["a_only"], first["b_only"]) == (12, 10, 0)
    assert first["diff"] == pytest.approx(10 / 12)
    assert first["p_value"] == pytest.approx(mcnemar_exact(10, 0))
    assert first["verdict"] == "A better"
    assert table.iloc[2]["verdict"] == NO_DIFFERENCE  # 2 vs 0 discordant: p = 0.5


def test_paired_matrix_uses_only_cases_both_models_answered() -> None:
    frame = _frame({"a": [1, 1, 1, 1], "b": [0, 0, 0, 0]})
    frame = frame[~((frame["model"] == "b") & (frame["case_id"] == "c3"))]
    row = compare.paired_matrix(frame).iloc[0]
    assert row["n"] == 3 and row["a_only"] == 3


def test_paired_matrix_by_task_adds_rows_per_task() -> None:
    frame = pd.concat([_frame({"a": [1, 0], "b": [0, 0]}, task="x"),
                       _frame({"a": [1, 1], "b": [1, 0]}, task="y")])
    table = compare.paired_matrix(frame, by_task=True)
    assert table["task"].tolist() == ["all", "x", "y"]
    assert table.set_index("task").loc["all", "n"] == 4


def test_repeats_pair_cases_not_samples() -> None:
    frame = _frame({"a": [1, 0, 1], "b": [0, 0, 1]}, repeats=4)
    row = compare.paired_matrix(frame).iloc[0]
    assert row["n"] == 3  # 12 samples per model, but 3 cases
    assert (row["a_only"], row["b_only"]) == (1, 0)


def test_compare_runs_lines_up_models_present_in_both_runs() -> None:
    before = _frame({"mixtral": [1] * 10, "only-before": [1] * 10}, run_id="q4")
    after = _frame({"mixtral": [1, 1] + [0] * 8}, run_id="q2")
    table = compare.compare_runs(pd.concat([before, after]), "q4", "q2")
    assert table["model"].unique().tolist() == ["mixtral"]
    pooled = table[table["task"] == "all"].iloc[0]
    assert (pooled["run_a"], pooled["run_b"], pooled["a_only"]) == ("q4", "q2", 8)
    assert pooled["verdict"] == "A better"
    assert len(table) == 2  # pooled + the one task


def test_compare_runs_pairs_host_qualified_names_with_the_plain_name() -> None:
    """A run that served mixtral from two hosts vs a one-host run: each host's copy lines up
    with the plain `mixtral`; a model whose base name differs is still not paired."""
    farm = _frame({"mixtral@10.0.0.2:11434": [1] * 6, "mixtral@10.0.0.3:11434": [1, 1, 1, 0, 0, 0],
                   "granite@10.0.0.2:11434": [1] * 6}, run_id="farm")
    one = _frame({"mixtral": [0] * 6, "olmoe": [1] * 6}, run_id="one")
    table = compare.compare_runs(pd.concat([farm, one]), "farm", "one")
    pooled = table[table["task"] == "all"].set_index("model")
    assert pooled.index.tolist() == ["mixtral@10.0.0.2:11434 ↔ mixtral",
                                     "mixtral@10.0.0.3:11434 ↔ mixtral"]
    assert pooled["a_only"].tolist() == [6, 3] and (pooled["n"] == 6).all()
    assert compare.base_model("mixtral:8x7b@gpu-box:11434") == "mixtral:8x7b"
    assert compare.base_model("hf/org@rev") == "hf/org@rev"  # not a host:port suffix


def test_compare_runs_errors_name_the_fix() -> None:
    frame = _frame({"m": [1]}, run_id="r1")
    with pytest.raises(RunNotFound, match="run 'nope' has no samples"):
        compare.compare_runs(frame, "r1", "nope")
    with pytest.raises(MoebenchError, match="two different runs"):
        compare.compare_runs(frame, "r1", "r1")


def test_label_runs_only_renames_models_spanning_runs() -> None:
    frame = pd.concat([_frame({"m": [1], "solo": [1]}, run_id="r1"),
                       _frame({"m": [0]}, run_id="r2")])
    labelled = compare.label_runs(frame)
    assert labelled is not None
    assert labelled["model"].tolist() == ["m @ r1", "solo", "m @ r2"]
    assert compare.label_runs(_frame({"m": [1]})) is not None


def test_compare_stored_runs_reads_a_real_store(tmp_path: Path) -> None:
    fill_store(tmp_path, "r1", demo_samples(seed=1))
    fill_store(tmp_path, "r2", demo_samples(seed=2, run_id="r2"))
    table = compare.compare_stored_runs(tmp_path, "r1", "last")
    assert set(table["run_b"]) == {"r2"}
    assert set(table["model"]) == {"mixtral:8x7b", "qwen3:30b-a3b", "olmoe:7b"}
    assert (table[table["task"] == "all"]["n"] == 24).all()
    with pytest.raises(RunNotFound):
        compare.compare_stored_runs(tmp_path, "r1", "missing")
